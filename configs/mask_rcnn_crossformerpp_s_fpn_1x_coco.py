# Mask R-CNN, CrossFormer++-S, 1x (paper: 43.0M params, 46.4 box / 42.1 mask AP)
_base_ = [
    './_base_/det_mask_rcnn_crossformer_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='pp-small',  # windowed LDA + ACL; G, I as for detection
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
