# mmdeploy: Semantic FPN with CrossFormer, ONNX Runtime, dynamic batch / size (>= 256).
_base_ = ['./segmentation_onnxruntime_static-512x512.py']
onnx_config = dict(
    input_shape=None,
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'}, output={0: 'batch', 2: 'height', 3: 'width'}
    ),
)
