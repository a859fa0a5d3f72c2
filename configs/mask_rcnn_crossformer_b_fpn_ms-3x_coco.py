# Mask R-CNN, CrossFormer-B, 3x multi-scale (paper: 71.5M params, 49.8 box / 44.5 mask AP)
_base_ = [
    './_base_/det_mask_rcnn_crossformer_fpn.py',
    './_base_/det_coco_instance_ms-crop.py',
    './_base_/det_schedule_adamw_3x.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/crossformer-b.pth')
    )
)
