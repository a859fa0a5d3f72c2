# Semantic FPN + CrossFormer++-S, ADE20K 80k: 47.4 mIoU, 27.1M params.
_base_ = './_base_/seg_fpn_crossformer_80k_ade20k.py'
model = dict(
    backbone=dict(
        arch='pp-small',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
