# UPerNet + CrossFormer-B, ADE20K 160k: 49.7 mIoU (MS 50.6), 83.6M params.
_base_ = './_base_/seg_upernet_crossformer_160k_ade20k.py'
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/crossformer-b.pth')
    )
)
