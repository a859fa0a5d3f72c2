# DINO 5-scale, CrossFormer-B, 12 epochs (no published CrossFormer result).
_base_ = './dino-5scale_crossformer-s_8xb2-12e_coco.py'
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/crossformer-b.pth')
    )
)
