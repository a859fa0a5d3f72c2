"""crossformer_mm: CrossFormer / CrossFormer++ and HigherHRNet for OpenMMLab 2.0.

Importing the package (directly, or through a config's
``custom_imports=dict(imports=['crossformer_mm'])``) registers every module
into MMEngine's root registries, so mmdet, mmseg and mmpose all find them.
"""
from .utils.mmpose_compat import allow_mmpose_visualization_without_torchvision

allow_mmpose_visualization_without_torchvision()  # before anything imports mmpose

from . import models  # noqa: F401,E402
from .utils.runtime import apply_runtime_fixes
from .version import __version__

__all__ = ['__version__']

apply_runtime_fixes()  # stock-tool fixes for torch>=2.6 / CPU runs, see utils/runtime.py
