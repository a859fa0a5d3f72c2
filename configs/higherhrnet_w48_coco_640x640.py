# HigherHRNet-W48, COCO 640x640, mixed precision (published: AP 69.9 single
# scale, 72.1 with multi-scale [0.5, 1, 2], flip test). Multi-scale test: see
# higherhrnet_w32_coco_512x512.py.
_base_ = ['./higherhrnet_w32_coco_640x640.py']

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth')),
    head=dict(in_channels=48, deconv_out_channels=(48, )))
