# HigherHRNet-W32, COCO 640x640, mixed precision as the original 640 models
# (published: AP 68.5 single scale, 70.6 with multi-scale [0.5, 1, 2], flip
# test). Multi-scale test: see higherhrnet_w32_coco_512x512.py.
_base_ = ['./higherhrnet_w32_coco_512x512.py']

input_size = 640

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')

train_pipeline = [
    dict(type='LoadImage'),
    dict(
        type='BottomupRandomAffine',
        input_size=(input_size, input_size),
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
        shift_factor=0.2,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal', prob=0.5),
    dict(type='GenerateTarget', encoder={{_base_.codec}}),
    dict(type='BottomupGetHeatmapMaskWithCrowd'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(
        type='ResizeAlignMultiScale',
        input_size=input_size,
        scale_factors=[1.0],
        size_divisor=64),
    dict(type='PackMultiScalePoseInputs'),
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
