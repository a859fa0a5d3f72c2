# The CrossFormer backbone of every detection config: CrossFormer-S with the
# dense-prediction groups G=(7, 7, 7, 7), I=(8, 4, 2, 1) and drop path 0.2.
# Variants override `arch`, `drop_path_rate` and `init_cfg.checkpoint` (the
# released ImageNet classification file; or
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
crossformer_backbone = dict(
    _delete_=True,  # replaces the ResNet of mmdet's model bases
    type='CrossFormer',
    arch='small',
    group_size=[7, 7, 7, 7],
    crs_interval=[8, 4, 2, 1],
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/crossformer-s.pth'),
)
