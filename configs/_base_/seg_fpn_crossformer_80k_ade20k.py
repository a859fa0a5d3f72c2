# Semantic FPN + CrossFormer-S on ADE20K, 512x512 crops, 80k iterations: the
# published recipe (CrossFormer, ICLR 2022). Variants override the backbone
# arch / group sizes / drop path / checkpoint and the neck input channels.
_base_ = [
    './mmseg/_base_/models/fpn_r50.py',
    './seg_crossformer_ade20k.py',
    './mmseg/_base_/schedules/schedule_80k.py',
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
    neck=dict(in_channels=[96, 192, 384, 768]),
    decode_head=dict(num_classes=150),
)

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
)
# mmcv 1.x 'poly' (power 0.9, min lr 0): lr(t) = 1e-4 * (1 - t / 80k) ** 0.9.
# MMEngine's PolyLR reaches its final value at step ``end - 1``: end = N + 1.
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0, end=80000 + 1)
]
# 4 GPUs x 4 images
train_dataloader = dict(batch_size=4)
