# mmdeploy: Semantic FPN with CrossFormer, ONNX Runtime, dynamic batch / size;
# traced at 512x512: see detection_onnxruntime_dynamic.py. Right at other sizes
# only with the Upsample rewrite named in _base_/onnxruntime.py (mmseg's
# Upsample bakes its output size). UPerNet: static only (its pooling module).
_base_ = ['./segmentation_onnxruntime_static-512x512.py']
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'}, output={0: 'batch', 2: 'height', 3: 'width'}
    ),
)
