from .cross_scale_embed import CrossScaleEmbedding, CrossScalePatchMerging
from .crossformer_block import CrossFormerBlock
from .dpb import DynamicPosBias
from .linear import Linear
from .lsda import LSDA, GroupLayout, group_layout

__all__ = [
    'CrossScaleEmbedding',
    'CrossScalePatchMerging',
    'CrossFormerBlock',
    'DynamicPosBias',
    'Linear',
    'LSDA',
    'GroupLayout',
    'group_layout',
]
