# Top-down heatmap pose estimation on COCO (mmpose's Swin recipe: 256x192,
# 210 epochs, Adam) with CrossFormer-S: the backbone (the last stage only, as
# Swin's out_indices=(3,)) and the head's input width 8C; the Swin recipe has
# no layer-wise settings. No published CrossFormer result.
_base_ = (
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_swin-t-p4-w7_8xb32-210e_coco-256x192.py'
)
custom_imports = dict(
    imports=['crossformer_mm.pose'], allow_failed_imports=False
)  # registers CrossFormer
model = dict(
    backbone=dict(
        _delete_=True,  # replaces Swin
        type='CrossFormer',
        arch='small',
        group_size=[7, 7, 7, 7],
        crs_interval=[8, 4, 2, 1],
        drop_path_rate=0.2,
        out_indices=(3,),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/crossformer-s.pth'),
    ),
    head=dict(in_channels=768),
)
