# Semantic FPN + CrossFormer++-B, ADE20K 80k: 48.6 mIoU, 55.6M params.
_base_ = './_base_/seg_fpn_crossformer_80k_ade20k.py'
model = dict(
    backbone=dict(
        arch='pp-base',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
