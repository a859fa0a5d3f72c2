# RetinaNet, CrossFormer++-B, 1x (paper: 62.2M params, 46.6 box AP)
_base_ = [
    './_base_/det_retinanet_crossformer_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/det_schedule_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='pp-base',  # windowed LDA + ACL; G, I as for detection
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
