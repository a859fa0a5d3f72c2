"""crossformer_mm: CrossFormer / CrossFormer++ and HigherHRNet for OpenMMLab 2.0.

Importing the package (directly, or through a config's
``custom_imports=dict(imports=['crossformer_mm'])``) registers every module
into MMEngine's root registries, so mmdet, mmseg and mmpose all find them.
"""
from . import models  # noqa: F401
from .utils.runtime import apply_runtime_fixes
from .version import __version__

__all__ = ['__version__']

apply_runtime_fixes()  # stock-tool fixes for torch>=2.6 / CPU runs, see utils/runtime.py
