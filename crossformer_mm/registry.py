"""The ``crossformer_mm`` registries.

Every module registered here is registered twice: in the ``crossformer_mm``
scope (a child of MMEngine's root registry), so that a scoped type name such as
``type='crossformer_mm.CrossFormer'`` builds from any toolbox's config (mmdet,
mmseg, mmpose, mmpretrain), and in MMEngine's root registry, so that the plain
``type='CrossFormer'`` is found from every toolbox's default scope.
"""

from typing import Optional, Type, Union

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry


class ScopedRegistry(Registry):
    """A ``crossformer_mm`` registry whose entries are also put in its parent."""

    def _register_module(
        self, module: Type, module_name: Optional[Union[str, list]] = None, force: bool = False
    ) -> None:
        super()._register_module(module, module_name, force)
        self.parent._register_module(module, module_name, force)


#: Backbones, layers, heads and losses of this package.
MODELS = ScopedRegistry(
    'model', parent=MMENGINE_MODELS, scope='crossformer_mm', locations=['crossformer_mm.models']
)
