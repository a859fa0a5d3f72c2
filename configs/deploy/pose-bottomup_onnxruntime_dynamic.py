# mmdeploy: HigherHRNet, ONNX Runtime, dynamic batch / size; traced at the test
# pipeline's size of the conversion image (>= 512, above the small-map limit of
# a CrossFormer backbone: see detection_onnxruntime_dynamic.py).
_base_ = ['./pose-bottomup_onnxruntime_static-512x512.py']
onnx_config = dict(dynamic_axes=dict(input={0: 'batch', 2: 'height', 3: 'width'}))
