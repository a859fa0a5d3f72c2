# mmdeploy: HigherHRNet (crossformer_mm.pose), ONNX Runtime, static: the
# network's two raw outputs (grouping stays in Python, as in mmpose's bottom-up
# deploy configs). input_shape stays None: mmdeploy 1.x reads the trace size
# from the codec's `input_size` when it is set (mmdeploy/codebase/mmpose/deploy/
# pose_detection.py, create_input), which HigherResolutionAssociativeEmbedding
# does not have; the graph is traced at the test pipeline's size of the
# conversion image (short side 512, long side a multiple of 64).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(output_names=['heatmaps', 'tags'], input_shape=None)
codebase_config = dict(type='mmpose', task='PoseDetection')
