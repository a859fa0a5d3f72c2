# Mask R-CNN, CrossFormer-S, 3x multi-scale (paper: 50.2M params, 48.7 box / 43.9 mask AP)
_base_ = [
    './_base_/det_mask_rcnn_crossformer_fpn.py',
    './_base_/det_coco_instance_ms-crop.py',
    './_base_/det_schedule_adamw_3x.py',
    'mmdet::_base_/default_runtime.py',
]
