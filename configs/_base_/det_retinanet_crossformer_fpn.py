# RetinaNet + FPN on the CrossFormer-S backbone; the FPN starts at stride 8
# and builds its extra levels from the backbone input (start_level=1,
# add_extra_convs='on_input'), as in the original configs.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', './crossformer_backbone.py']
custom_imports = dict(
    imports=['crossformer_mm'], allow_failed_imports=False
)  # registers CrossFormer
model = dict(
    backbone={{_base_.crossformer_backbone}},
    neck=dict(
        in_channels=[96, 192, 384, 768], start_level=1, add_extra_convs='on_input', num_outs=5
    ),
)
