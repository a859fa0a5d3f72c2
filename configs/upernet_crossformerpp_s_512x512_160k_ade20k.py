# UPerNet + CrossFormer++-S, ADE20K 160k: 49.4 mIoU (MS 50.8), 53.1M params.
_base_ = './_base_/seg_upernet_crossformer_160k_ade20k.py'
model = dict(
    backbone=dict(
        arch='pp-small',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256),
)
