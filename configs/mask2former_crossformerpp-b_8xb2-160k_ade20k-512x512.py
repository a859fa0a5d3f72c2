# Mask2Former, CrossFormer++-B, ADE20K 160k, 512x512 (no published CrossFormer result).
_base_ = './mask2former_crossformer-s_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='pp-base',  # windowed LDA + ACL; G, I as for segmentation
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-b.pth'),
    )
)
