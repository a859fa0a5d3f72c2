# HigherHRNet-W48, CrowdPose 640x640, mixed precision; trainval -> test
# (published, CrowdPose test, flip: AP 65.9, AP50 86.4, AP75 70.6, AP(E) 73.3,
# AP(M) 66.5, AP(H) 57.9; multi-scale [0.5, 1, 2]: 67.6 / 87.4 / 72.6 / 75.8 /
# 68.1 / 58.9). Multi-scale test: see higherhrnet_w32_crowdpose_512x512.py.
_base_ = ['./_base_/pose_higherhrnet_w48_640.py', './_base_/pose_crowdpose_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
