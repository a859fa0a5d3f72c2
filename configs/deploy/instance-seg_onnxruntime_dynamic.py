# mmdeploy: Mask R-CNN with CrossFormer, ONNX Runtime, dynamic batch / size.
# Traced at (W, H) = (1216, 800): see detection_onnxruntime_dynamic.py.
_base_ = ['./instance-seg_onnxruntime_static-800x1216.py']
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'},
        masks={0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'},
    ),
)
