# Mask R-CNN, CrossFormer-S, 1x (paper: 50.2M params, 45.4 box / 41.4 mask AP)
_base_ = [
    './_base_/det_mask_rcnn_crossformer_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]
