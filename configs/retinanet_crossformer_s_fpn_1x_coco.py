# RetinaNet, CrossFormer-S, 1x (paper: 40.8M params, 44.4 box AP)
_base_ = [
    './_base_/det_retinanet_crossformer_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]
