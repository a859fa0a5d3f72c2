# mmdeploy: Mask R-CNN with CrossFormer, ONNX Runtime, static 800x1216.
_base_ = ['./detection_onnxruntime_static-800x1216.py']
onnx_config = dict(output_names=['dets', 'labels', 'masks'])
codebase_config = dict(post_processing=dict(export_postprocess_mask=False))
