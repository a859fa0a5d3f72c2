# mmdeploy: HigherHRNet (crossformer_mm.pose), ONNX Runtime, static 512x512: the
# network's heatmaps and tags (grouping stays in Python, as in mmpose's bottom-up
# deploy configs).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(output_names=['heatmaps', 'tags'], input_shape=[512, 512])
codebase_config = dict(type='mmpose', task='PoseDetection')
