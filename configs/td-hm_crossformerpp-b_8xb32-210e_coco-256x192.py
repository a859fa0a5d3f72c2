# Top-down heatmap, CrossFormer++-B, COCO 256x192, 210 epochs (no published CrossFormer result).
_base_ = './td-hm_crossformer-s_8xb32-210e_coco-256x192.py'
model = dict(
    backbone=dict(
        arch='pp-base',  # windowed LDA + ACL; G, I as for dense prediction
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
