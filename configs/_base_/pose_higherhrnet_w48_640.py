# The HigherHRNet-W48 recipe at 640x640 (W32 x 1.5 channels), mixed precision;
# combined with a dataset base like pose_higherhrnet_w32.py.
_base_ = ['./pose_higherhrnet_w32_640.py']

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)),
        ),
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth'
        ),
    ),
    head=dict(in_channels=48, deconv_out_channels=(48,)),
)
