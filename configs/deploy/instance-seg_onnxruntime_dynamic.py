# mmdeploy: Mask R-CNN with CrossFormer, ONNX Runtime, dynamic batch / size (>= 256).
_base_ = ['./instance-seg_onnxruntime_static-800x1216.py']
onnx_config = dict(
    input_shape=None,
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'},
        masks={0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'},
    ),
)
