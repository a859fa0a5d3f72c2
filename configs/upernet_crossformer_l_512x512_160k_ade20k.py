# UPerNet + CrossFormer-L, ADE20K 160k: 50.4 mIoU (MS 51.4), 125.5M params.
_base_ = './_base_/seg_upernet_crossformer_160k_ade20k.py'
model = dict(
    backbone=dict(
        arch='large', drop_path_rate=0.5, init_cfg=dict(checkpoint='checkpoints/crossformer-l.pth')
    ),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
)
