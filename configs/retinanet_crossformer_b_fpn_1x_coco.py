# RetinaNet, CrossFormer-B, 1x (paper: 62.1M params, 46.2 box AP)
_base_ = [
    './_base_/det_retinanet_crossformer_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/crossformer-b.pth')
    )
)
