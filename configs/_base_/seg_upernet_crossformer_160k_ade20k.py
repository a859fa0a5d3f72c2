# UPerNet + CrossFormer-S on ADE20K, 512x512 crops, 160k iterations: the
# published recipe (CrossFormer, ICLR 2022). Variants override the backbone
# arch / drop path / checkpoint and the head input channels [C, 2C, 4C, 8C].
_base_ = [
    './mmseg/_base_/models/upernet_swin.py',
    './seg_crossformer_ade20k.py',
    './mmseg/_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=_base_.crossformer_backbone,  # replaces mmseg's backbone
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    # FCN head on stage 3 (4C channels), loss weight 0.4; SyncBN in both heads
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150),
)

# AdamW, no weight decay on any parameter whose name contains 'norm'.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
)
# mmcv 1.x 'poly' (power 1) with a linear warm-up from 1e-6: the warm-up factor
# multiplies the poly rate of the same iteration, lr(t) = 6e-5 * (1 - t / 160k)
# * warm(t). MMEngine composes overlapping schedulers by multiplication, and
# its schedulers reach their final value at step ``end - 1``, so end = N + 1
# reproduces mmcv's factors (1 - t / N) exactly.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500 + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=160000 + 1),
]
# 8 GPUs x 2 images
train_dataloader = dict(batch_size=2)
