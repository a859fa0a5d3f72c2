# HigherHRNet-W32, CrowdPose 512x512: the COCO recipe on CrowdPose trainval,
# tested on CrowdPose test (AP, AP50, AP75, AP(E/M/H)). The original trains
# CrowdPose with the COCO recipe (Adam, 300 epochs, x0.1 at 200 and 260); the
# schedule base states it for 8 GPUs x 24 images (--auto-scale-lr adapts lr).
#
# Multi-scale test (flip test stays on):
#   --cfg-options model.test_cfg.multiscale_test=True \
#       test_dataloader.dataset.pipeline.1.scale_factors="[0.5,1.0,2.0]"
_base_ = ['./_base_/pose_higherhrnet_w32.py', './_base_/pose_crowdpose_bottomup.py']
model = dict(
    head=dict(
        num_keypoints={{_base_.num_keypoints}},
        decoder=dict(decode_keypoint_order={{_base_.decode_keypoint_order}}),
    )
)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.val_pipeline}}))
