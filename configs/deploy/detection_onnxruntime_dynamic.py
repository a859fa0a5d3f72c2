# mmdeploy: RetinaNet with CrossFormer, ONNX Runtime, dynamic batch / size.
# Traced at the static config's input_shape (W, H) = (1216, 800), not at the
# conversion image's own size: a dynamic CrossFormer graph is right only from
# the small-map limit up (>= 256 per side for the released archs,
# crossformer_mm.deployment.min_dynamic_size) and only when traced at such a
# size; traced smaller, it runs at other sizes with wrong outputs.
_base_ = ['./detection_onnxruntime_static-800x1216.py']
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'},
    ),
)
