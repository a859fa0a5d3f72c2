# HigherHRNet head on a CrossFormer-S backbone, COCO 512x512: a model no
# toolbox offers (no published result; the recipe is a starting point).
# The four CrossFormer stages (96, 192, 384, 768 channels at strides 4-32,
# dense-prediction groups G=(7, 7, 7, 7), I=(8, 4, 2, 1)) are resized to 1/4,
# concatenated and fused to one 96-channel map for the HigherHRNet head; the
# targets, loss, pipelines, schedule and test settings are those of
# higherhrnet_w32_coco_512x512.py. The backbone starts from the released
# ImageNet CrossFormer-S file and learns at 0.1x the lr under AdamW.
_base_ = ['./higherhrnet_w32_coco_512x512.py', './_base_/crossformer_backbone.py']

model = dict(
    backbone={{_base_.crossformer_backbone}},
    neck=dict(type='UpsampleConcatNeck', in_channels=[96, 192, 384, 768], out_channels=96),
    head=dict(in_channels=96, deconv_out_channels=(32,)),
)

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1.5e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1))),
)
