# Top-down heatmap, CrossFormer++-S, COCO 256x192, 210 epochs (no published CrossFormer result).
_base_ = './td-hm_crossformer-s_8xb32-210e_coco-256x192.py'
model = dict(
    backbone=dict(
        arch='pp-small',  # windowed LDA + ACL; G, I as for dense prediction
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    head=dict(in_channels=512),
)
