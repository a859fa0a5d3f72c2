# HigherHRNet-W32, COCO 640x640, mixed precision as the original 640 models
# (published: AP 68.5 single scale, 70.6 with multi-scale [0.5, 1, 2], flip
# test). Multi-scale test: see higherhrnet_w32_coco_512x512.py.
_base_ = ['./_base_/pose_higherhrnet_w32_640.py', './_base_/pose_coco_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
