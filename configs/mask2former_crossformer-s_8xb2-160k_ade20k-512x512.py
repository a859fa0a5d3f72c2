# Mask2Former semantic segmentation on ADE20K (mmseg's Swin recipe: 512x512
# crops, 160k iterations) with CrossFormer-S: the backbone, the head's input
# widths [C, 2C, 4C, 8C] and the Swin recipe's layer-wise settings carried
# over to CrossFormer's parameters (backbone lr x0.1; no weight decay on its
# norms and its dynamic position bias, as Swin's norms and bias table).
# No published CrossFormer result.
_base_ = [
    './_base_/mmseg/mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py',
    './_base_/crossformer_backbone.py',
    './_base_/crossformer_paramwise.py',
]
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer
model = dict(
    pretrained=None,  # mmseg hands a model-level `pretrained` to the backbone
    backbone={{_base_.crossformer_backbone}},  # CrossFormer-S, out_indices (0, 1, 2, 3)
    decode_head=dict(in_channels=[96, 192, 384, 768]),
)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={{_base_.crossformer_mask2former_custom_keys}}, norm_decay_mult=0.0
    )
)
