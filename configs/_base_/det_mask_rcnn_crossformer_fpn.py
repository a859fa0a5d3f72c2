# Mask R-CNN + FPN (mmdet's) on the CrossFormer-S backbone.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './crossformer_backbone.py']
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer
model = dict(backbone={{_base_.crossformer_backbone}}, neck=dict(in_channels=[96, 192, 384, 768]))
