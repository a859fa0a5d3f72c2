# HigherHRNet-W32, COCO 512x512 (published: AP 67.1 single scale, 69.9 with
# multi-scale [0.5, 1, 2], both with flip test).
#
# Multi-scale test (flip test stays on):
#   --cfg-options model.test_cfg.multiscale_test=True \
#       test_dataloader.dataset.pipeline.1.scale_factors="[0.5,1.0,2.0]"
_base_ = ['./_base_/pose_higherhrnet_w32.py', './_base_/pose_coco_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
