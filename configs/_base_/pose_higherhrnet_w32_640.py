# The HigherHRNet-W32 recipe at 640x640 (outputs 160 and 320), with mixed
# precision as the original 640 models; combined with a dataset base like
# pose_higherhrnet_w32.py.
_base_ = ['./pose_higherhrnet_w32.py']

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
        distribution='uniform',
    ),
    dict(type='RandomFlip', direction='horizontal', prob=0.5),
    dict(type='GenerateTarget', encoder={{_base_.codec}}),
    dict(type='BottomupGetHeatmapMaskWithCrowd'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeAlignMultiScale', input_size=input_size, scale_factors=[1.0], size_divisor=64),
    dict(type='PackMultiScalePoseInputs'),
]
