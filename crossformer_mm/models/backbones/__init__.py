from . import original_names  # noqa: F401  (registers CrossFormer_S, ...)
from .crossformer import ARCH_SETTINGS, CrossFormer

__all__ = ['ARCH_SETTINGS', 'CrossFormer']
