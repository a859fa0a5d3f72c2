# Mask2Former, CrossFormer++-S, ADE20K 160k, 512x512 (no published CrossFormer result).
_base_ = './mask2former_crossformer-s_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='pp-small',  # windowed LDA + ACL; G, I as for segmentation
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/crossformerpp-s.pth'),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
)
