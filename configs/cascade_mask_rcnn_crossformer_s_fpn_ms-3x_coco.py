# Cascade Mask R-CNN, CrossFormer-S, 3x multi-scale (paper: 88.0M params, 52.2 box / 45.2 mask AP)
_base_ = [
    './_base_/det_cascade_mask_rcnn_crossformer_fpn.py',
    './_base_/det_coco_instance_ms-crop.py',
    './_base_/det_schedule_adamw_3x.py',
    'mmdet::_base_/default_runtime.py',
]
