# ONNX Runtime (CPU) backend of mmdeploy 1.x; the ONNX export settings shared by
# every deploy config here; opset 17 (LayerNormalization).
# Measured with onedl-mmdeploy (1.5.0 source, Python 3.12): without the package's rewrites
# (crossformer_mm.deployment.rewrites: mmdeploy's rewrite of scaled_dot_product_attention
# divides by `scale`; mmseg's Upsample bakes its size into the graph) the conversion succeeds
# and the numbers are wrong.
custom_imports = dict(
    imports=['crossformer_mm.deployment.mmdeploy_rewrites'], allow_failed_imports=False
)
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
