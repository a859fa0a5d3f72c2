# mmdeploy: UPerNet / Semantic FPN with CrossFormer, ONNX Runtime, static 512x512
# (UPerNet's pooling module exports with static shapes only: mmdeploy#658).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(output_names=['output'], input_shape=[512, 512])
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
