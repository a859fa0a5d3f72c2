# DINO 5-scale (mmdet's Swin-L recipe, 12 epochs) with CrossFormer-S: the
# backbone and the neck's input widths [C, 2C, 4C, 8C] change, nothing else.
# No published CrossFormer result for this recipe.
_base_ = [
    'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
    './_base_/crossformer_backbone.py',
]
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer
model = dict(
    backbone={{_base_.crossformer_backbone}},  # CrossFormer-S, out_indices (0, 1, 2, 3)
    neck=dict(in_channels=[96, 192, 384, 768]),
)
