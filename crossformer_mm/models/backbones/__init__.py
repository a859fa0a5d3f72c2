from .crossformer import ARCH_SETTINGS, CrossFormer

__all__ = ['ARCH_SETTINGS', 'CrossFormer']
