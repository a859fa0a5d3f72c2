# CrossFormer / CrossFormer++ ImageNet-1K classification at 224: the published
# recipe of the original `main.py` (8 GPUs x 128 images, 300 epochs).
# Variants set the backbone's `arch` and `drop_path_rate` and the head's
# `in_channels` (8 x embed_dims); the backbone keeps the arch's own
# classification groups G / I.
#
# Data: mmpretrain's Swin pipeline is timm's `create_transform` of the original:
# RandomResizedCrop 224 bicubic, flip, RandAugment rand-m9-mstd0.5-inc1 (no
# colour jitter with RandAugment, as in timm), random erasing 0.25 ('rand' =
# timm's 'pixel' mode, 1 box); eval: short side 256 bicubic, center crop 224;
# ImageNet mean / std.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(  # registers CrossFormer and CrossFormerClsHead
    imports=['crossformer_mm.classification'], allow_failed_imports=False
)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CrossFormer',
        arch='small',
        drop_path_rate=0.2,
        out_indices=(3,),  # the last stage, (B, 8C, H/32, W/32)
        init_cfg=None,
    ),
    neck=None,
    head=dict(
        type='CrossFormerClsHead',  # norm -> mean over tokens -> linear
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False,
    ),
    # Mixup 0.8 / CutMix 1.0, one of them per batch (switch prob 0.5, prob 1.0);
    # the label smoothing applies to the mixed targets, as timm's Mixup does
    train_cfg=dict(
        augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ]
    ),
)

train_dataloader = dict(batch_size=128, num_workers=8)
val_dataloader = dict(batch_size=128, num_workers=8)
test_dataloader = val_dataloader

# AdamW; the original's linear scaling lr = 5e-4 x total batch / 512 (1e-3 at
# 8 x 128) is mmengine's auto_scale_lr with base 512, always on; warm-up from
# 5e-7 and the cosine floor 5e-6 are relative to it, so they scale along.
# No weight decay on 1-D parameters (norms) and biases.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0),
)
auto_scale_lr = dict(base_batch_size=512, enable=True)

# 20 linear warm-up epochs (5e-7 -> 5e-4, per iteration), then cosine to
# 5e-6 (per iteration). The original's timm scheduler runs one cosine over all
# 300 epochs that the warm-up overrides at first; here the cosine starts after
# the warm-up (mmpretrain's Swin recipe), a difference of < 1.1% of the lr.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=1e-2,
        by_epoch=True,
        begin=20,
        end=300,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
