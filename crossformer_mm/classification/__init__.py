"""CrossFormer / CrossFormer++ ImageNet classification for mmpretrain 1.x.

The classifier is mmpretrain's ``ImageClassifier`` with the CrossFormer
backbone (``out_indices=(3, )``) and :class:`CrossFormerClsHead`, whose
parameters carry the released names (``norm.*``, ``head.*``): the released
classification files (``crossformer-s.pth``, ...) load as they are through
``init_cfg``, ``load_from`` and ``mim test mmpretrain CONFIG --checkpoint``.

Classification configs import it with
``custom_imports=dict(imports=['crossformer_mm.classification'])``.
"""

from .head import CrossFormerClsHead

__all__ = ['CrossFormerClsHead']
