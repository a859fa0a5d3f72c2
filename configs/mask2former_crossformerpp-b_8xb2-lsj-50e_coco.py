# Mask2Former instance segmentation, CrossFormer++-B, LSJ 50 epochs
# (no published CrossFormer result).
_base_ = './mask2former_crossformer-s_8xb2-lsj-50e_coco.py'
model = dict(
    backbone=dict(
        arch='pp-base',  # windowed LDA + ACL; G, I as for detection
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
