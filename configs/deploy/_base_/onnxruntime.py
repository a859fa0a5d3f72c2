# ONNX Runtime (CPU) backend of mmdeploy 1.x; the ONNX export settings shared by
# every deploy config here. CrossFormer needs no mmdeploy rewrite: its layout is
# traceable (crossformer_mm/models/layers/lsda.py); opset 17 for the fused
# attention and LayerNormalization. Dynamic graphs hold from the small-map limit
# up (height and width >= 256 for the released archs, docs/deployment.md).
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=17,
    save_file='end2end.onnx',
    input_names=['input'],
    input_shape=None,
    optimize=True,
)
backend_config = dict(type='onnxruntime')
