# mmdeploy: HigherHRNet, ONNX Runtime, dynamic batch / size.
_base_ = ['./pose-bottomup_onnxruntime_static-512x512.py']
onnx_config = dict(input_shape=None, dynamic_axes=dict(input={0: 'batch', 2: 'height', 3: 'width'}))
