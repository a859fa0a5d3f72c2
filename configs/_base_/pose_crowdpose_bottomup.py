# CrowdPose in mmpose's bottom-up mode, as the original HigherHRNet: train on
# trainval (train + val), test on test; mmpose's CrowdPoseDataset (14 joints,
# its flip pairs, skeleton and OKS sigmas) and the CrowdPose evaluation of
# xtcocotools (iou_type 'keypoints_crowd', no areas): AP, AP .5, AP .75, AR
# and AP(E) / AP(M) / AP(H) by the images' crowdIndex (< 0.2, < 0.8, >= 0.8).
# Annotations: mmpose's CrowdPose json files (mmpose_crowdpose_*.json, one
# images/ folder). The pipelines come from the model base (see
# pose_higherhrnet_w32.py).

# The dataset's joints for the model: 14. The original grouping takes the
# first num_joints entries of its COCO order [0, 1, 2, 3, 4, 5, 6, 11, 12, 7,
# 8, 9, 10, 13, 14, 15, 16] for every dataset; for CrowdPose that is this
# permutation (shoulders, elbows, wrists, left hip, right ankle, top of head,
# right hip, knees, left ankle, neck), which the published model was tested with.
num_keypoints = 14
decode_keypoint_order = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13]

dataset_type = 'CrowdPoseDataset'
data_mode = 'bottomup'
data_root = 'data/crowdpose/'

train_dataloader = dict(
    batch_size=24,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mmpose_crowdpose_trainval.json',
        data_prefix=dict(img='images/'),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mmpose_crowdpose_test.json',
        data_prefix=dict(img='images/'),
        test_mode=True,
    ),
)
test_dataloader = val_dataloader

# CrowdPose has no person areas (use_area=False); the person score is the
# decoder's (mean joint value, packed as bbox_scores), no OKS-NMS.
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    iou_type='keypoints_crowd',
    use_area=False,
    prefix='crowdpose',
    score_mode='bbox',
    nms_mode='none',
)
test_evaluator = val_evaluator
