# HigherHRNet-W32, CrowdPose 640x640, mixed precision; trainval -> test.
# Multi-scale test: see higherhrnet_w32_crowdpose_512x512.py.
_base_ = ['./_base_/pose_higherhrnet_w32_640.py', './_base_/pose_crowdpose_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
