# HigherHRNet-W48, COCO 640x640, mixed precision (published: AP 69.9 single
# scale, 72.1 with multi-scale [0.5, 1, 2], flip test). Multi-scale test: see
# higherhrnet_w32_coco_512x512.py.
_base_ = ['./_base_/pose_higherhrnet_w48_640.py', './_base_/pose_coco_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
