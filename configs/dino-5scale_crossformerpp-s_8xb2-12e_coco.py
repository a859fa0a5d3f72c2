# DINO 5-scale, CrossFormer++-S, 12 epochs (no published CrossFormer result).
_base_ = './dino-5scale_crossformer-s_8xb2-12e_coco.py'
model = dict(
    backbone=dict(
        arch='pp-small',  # windowed LDA + ACL; G, I as for detection
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
