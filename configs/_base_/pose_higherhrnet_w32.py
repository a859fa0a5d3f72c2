# The HigherHRNet-W32 recipe at 512x512, independent of the dataset: model,
# codec, train / test pipelines and the 300-epoch Adam schedule. A top config
# combines it with one dataset base (pose_coco_bottomup.py,
# pose_crowdpose_bottomup.py) and sets the dataset's joints and pipelines:
#
#   _base_ = ['./_base_/pose_higherhrnet_w32.py', './_base_/pose_DATASET_bottomup.py']
#   model = dict(head=dict(num_keypoints={{_base_.num_keypoints}},
#       decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}})))
#   train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
#   val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
#   test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
#
# (mmengine refuses a key that two sibling bases both define, so the dataset
# base and this one share no key and the top config joins them.)
_base_ = ['./pose_schedule_adam_300e.py']
# registers the HigherHRNet head, codec, losses, transforms and estimator
custom_imports = dict(imports=['crossformer_mm.pose'], allow_failed_imports=False)

input_size = 512

# The grouping order (decode_keypoint_order) is the dataset's: the top config
# sets it in model.head.decoder; encoding does not depend on it.
codec = dict(
    type='HigherResolutionAssociativeEmbedding',
    heatmap_strides=(4, 2),
    sigma=2,
    decode_nms_kernel=5,
    decode_max_num_people=30,
    decode_keypoint_thr=0.1,
    decode_tag_thr=1.0,
)

model = dict(
    type='MultiScaleBottomupPoseEstimator',
    data_preprocessor=dict(
        type='MultiScalePoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4,),
                num_channels=(64,),
            ),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64),
            ),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128),
            ),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256),
                multiscale_output=False,
            ),
        ),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth',
        ),
    ),
    head=dict(
        type='AEHigherResolutionHead',
        in_channels=32,
        num_keypoints=17,  # the dataset's (set by the top config)
        tag_dim=1,
        deconv_out_channels=(32,),
        deconv_kernel_sizes=(4,),
        num_basic_blocks=4,
        cat_output=(True,),
        heatmap_loss=dict(type='MultiResolutionHeatmapLoss', loss_factors=(1.0, 1.0)),
        tag_loss=dict(
            type='AssociativeEmbeddingPullPushLoss', pull_loss_factor=1e-3, push_loss_factor=1e-3
        ),
        decoder=codec,
    ),
    test_cfg=dict(flip_test=True, multiscale_test=False),
)

# Uniform scale [0.75, 1.5] of the short side, rotation [-30, 30] degrees and
# shift up to 0.2 of the image side, then a horizontal flip with p=0.5.
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
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupGetHeatmapMaskWithCrowd'),
    dict(type='PackPoseInputs'),
]
# Short side to input_size, long side rounded up to a multiple of 64.
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeAlignMultiScale', input_size=input_size, scale_factors=[1.0], size_divisor=64),
    dict(type='PackMultiScalePoseInputs'),
]
