# ONNX Runtime (CPU) backend of mmdeploy 1.x; the ONNX export settings shared by
# every deploy config here; opset 17 (LayerNormalization).
# Measured with onedl-mmdeploy (1.5.0 source, Python 3.12): two mmdeploy / mmseg
# behaviours give wrong numbers without a rewrite, and neither fails loudly:
# - mmdeploy's default rewrite of F.scaled_dot_product_attention
#   (mmdeploy/pytorch/functions/multi_head_attention_forward.py) divides the
#   logits by `scale` where torch multiplies; CrossFormer passes its scale, so
#   its attention logits come out d times too large (backbone features off by
#   1e-2..1e-1 relative);
# - mmseg's Upsample (Semantic FPN's head) computes its size as Python ints, so
#   a dynamic graph is right only at the traced size.
# Rewrites of both (FUNCTION_REWRITER, backend 'default') are in the report
# notes of the mmdeploy check (tools/deployment/mmdeploy_check.sh); once the
# package registers them, import them here with
#   custom_imports = dict(imports=[MODULE], allow_failed_imports=False)
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
