# Semantic FPN + CrossFormer-L, ADE20K 80k: 49.1 mIoU, 95.4M params.
_base_ = './_base_/seg_fpn_crossformer_80k_ade20k.py'
# the original Semantic FPN S / L configs use larger groups and intervals
model = dict(
    backbone=dict(
        arch='large',
        group_size=[14, 14, 7, 7],
        crs_interval=[16, 8, 2, 1],
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint='checkpoints/crossformer-l.pth'),
    ),
    neck=dict(in_channels=[128, 256, 512, 1024]),
)
