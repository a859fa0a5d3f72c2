# Cascade Mask R-CNN + FPN on the CrossFormer-S backbone, with the box heads of
# the Swin Transformer cascade recipe that the published CrossFormer numbers
# use (88.0M params for S): per stage 4 shared convs (SyncBN) + 1 fc,
# class-specific box regression of decoded boxes with a GIoU loss.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py', './crossformer_backbone.py']
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer


def _bbox_head(target_stds):
    return dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=target_stds
        ),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0),
    )


model = dict(
    backbone={{_base_.crossformer_backbone}},
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(
        bbox_head=[
            _bbox_head([0.1, 0.1, 0.2, 0.2]),
            _bbox_head([0.05, 0.05, 0.1, 0.1]),
            _bbox_head([0.033, 0.033, 0.067, 0.067]),
        ]
    ),
)
