from .cross_scale_embed import CrossScaleEmbedding, CrossScalePatchMerging
from .crossformer_block import CrossFormerBlock
from .dpb import DynamicPosBias
from .lsda import LSDA, GroupLayout, group_layout

__all__ = [
    'CrossScaleEmbedding', 'CrossScalePatchMerging', 'CrossFormerBlock',
    'DynamicPosBias', 'LSDA', 'GroupLayout', 'group_layout'
]
