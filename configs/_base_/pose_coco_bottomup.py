# COCO person keypoints in mmpose's bottom-up mode (one sample = one image
# with all its people; crowd regions and unlabelled people are masked by
# BottomupGetHeatmapMaskWithCrowd), evaluated with COCO keypoint AP over all
# images. The pipelines come from the model base (see pose_higherhrnet_w32.py).

# The dataset's joints for the model: 17, grouped head and torso first (the
# original HigherHRNet joint order).
num_keypoints = 17
decode_keypoint_order = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]

dataset_type = 'CocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'

train_dataloader = dict(
    batch_size=24,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
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
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
    ),
)
test_dataloader = val_dataloader

# The original scores a person by the mean of its joint values (the decoder's
# person score, packed as bbox_scores) and applies no OKS-NMS.
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    score_mode='bbox',
    nms_mode='none',
)
test_evaluator = val_evaluator
