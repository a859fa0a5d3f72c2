"""crossformer_mm: CrossFormer / CrossFormer++ and HigherHRNet for OpenMMLab 2.0.

``import crossformer_mm`` (directly, or through a config's
``custom_imports=dict(imports=['crossformer_mm'])``) registers the CrossFormer
backbone and its layers; it needs only torch, mmengine and mmcv. The toolbox
parts live in their own packages, imported by the configs that use them:

- ``crossformer_mm.pose``: HigherHRNet for mmpose 1.x;
- ``crossformer_mm.classification``: the ImageNet classifier for mmpretrain 1.x.

The stack's compatibility patches (:mod:`crossformer_mm.compat`) are applied
here only where their cause exists (old mmengine under new torch, no accelerator).
"""

from . import models  # noqa: F401  (importing registers the modules)
from .compat import apply_patches
from .version import __version__

__all__ = ['__version__']

apply_patches()
