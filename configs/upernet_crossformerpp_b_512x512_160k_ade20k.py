# UPerNet + CrossFormer++-B, ADE20K 160k: 50.7 mIoU (MS 51.0), 83.7M params.
_base_ = './_base_/seg_upernet_crossformer_160k_ade20k.py'
model = dict(
    backbone=dict(
        arch='pp-base',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
