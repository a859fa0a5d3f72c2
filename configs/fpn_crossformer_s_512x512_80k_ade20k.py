# Semantic FPN + CrossFormer-S, ADE20K 80k: 46.4 mIoU, 34.3M params.
_base_ = './_base_/seg_fpn_crossformer_80k_ade20k.py'
# the original Semantic FPN S / L configs use larger groups and intervals
model = dict(backbone=dict(group_size=[14, 14, 7, 7], crs_interval=[16, 8, 2, 1]))
