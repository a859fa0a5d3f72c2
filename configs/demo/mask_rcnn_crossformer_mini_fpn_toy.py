# `make demo`: a small CrossFormer Mask R-CNN trained from scratch on the toy
# shapes set (tools/misc/make_toy_data.py coco) in a few minutes on 2 CPU cores.
# Same detector and backbone code as the COCO configs; only the widths,
# depths and sample counts are scaled down for 128x128 images.
_base_ = [
    '../_base_/det_mask_rcnn_crossformer_fpn.py',
    '../_base_/det_toy_coco_instance.py',
    '../_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]

width = 64  # FPN / head channels
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,  # a custom arch instead of 'small'
            embed_dims=32,
            depths=(1, 1, 2, 1),
            num_heads=(1, 2, 4, 8),
        ),
        drop_path_rate=0.0,
        init_cfg=None,
    ),  # from scratch: no ImageNet weights needed
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=3),
    ),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))
    ),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(max_per_img=20)),
)

max_epochs = 8  # 400 iterations of 4 images
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[6, 7], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=0.001), clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1)
)
