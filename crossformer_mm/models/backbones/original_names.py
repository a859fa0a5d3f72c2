"""The backbone type names of the original CrossFormer code, as aliases.

Configs written for the original repository name the backbone by factory
class (``type='CrossFormer_S'``, with ``group_size``, ``crs_interval``,
``adaptive_interval``, ``init_cfg`` / ``pretrained``); these names build
:class:`CrossFormer` with the factories' detection settings and log the
equivalent ``type='CrossFormer'`` form once per name.

=================  ==========  ==============  =============================
original type      ``arch``    drop path       LDA / ACL (the arch's default)
=================  ==========  ==============  =============================
``CrossFormer_S``  small       0.2             iclr, no ACL
``CrossFormer_B``  base        0.3             iclr, no ACL
``CrossFormer_L``  large       0.5             iclr, no ACL
``CrossFormer_S2`` pp-small    0.2             windowed, ACL (CrossFormer++)
``CrossFormer_B2`` pp-base     0.3             windowed, ACL (CrossFormer++)
=================  ==========  ==============  =============================

The ICLR names use the ICLR grouping of the code that produced the released
detection / segmentation numbers; pass ``lda_mode='windowed'`` for the
``main`` branch's grouping.
"""

import logging
from typing import Dict, Optional, Sequence

from mmengine.logging import print_log

from crossformer_mm.registry import MODELS

from .crossformer import CrossFormer

#: original type name -> the CrossFormer arguments it stands for.
ORIGINAL_NAMES: Dict[str, dict] = {
    'CrossFormer_S': dict(arch='small', drop_path_rate=0.2),
    'CrossFormer_B': dict(arch='base', drop_path_rate=0.3),
    'CrossFormer_L': dict(arch='large', drop_path_rate=0.5),
    'CrossFormer_S2': dict(arch='pp-small', drop_path_rate=0.2),
    'CrossFormer_B2': dict(arch='pp-base', drop_path_rate=0.3),
}
_LOGGED = set()


def _original_factory(name: str, settings: dict) -> type:

    def __init__(
        self,
        group_size: Sequence[int] = (7, 7, 7, 7),
        crs_interval: Sequence[int] = (8, 4, 2, 1),
        adaptive_interval: bool = False,
        init_cfg: Optional[dict] = None,
        pretrained: Optional[str] = None,
        **kwargs,
    ) -> None:
        if adaptive_interval:
            raise ValueError(
                f'{name}(adaptive_interval=True) is not supported: every released '
                'configuration uses fixed intervals; set crs_interval per stage '
                'and adaptive_interval=False'
            )
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError(
                    f'{name}: give either pretrained={pretrained!r} or '
                    f'init_cfg={init_cfg!r}, not both'
                )
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        args = dict(settings, group_size=list(group_size), crs_interval=list(crs_interval))
        args.update(kwargs)
        if name not in _LOGGED:
            _LOGGED.add(name)
            shown = ', '.join(f'{k}={v!r}' for k, v in args.items())
            print_log(
                f"[crossformer_mm] type='{name}' (original CrossFormer name) is "
                f"type='CrossFormer', {shown}",
                logger='current',
                level=logging.INFO,
            )
        CrossFormer.__init__(self, init_cfg=init_cfg, **args)

    doc = (
        f'``{name}`` of the original code: :class:`CrossFormer` with '
        + ', '.join(f'``{k}={v!r}``' for k, v in settings.items())
        + '.'
    )
    return type(
        name, (CrossFormer,), {'__init__': __init__, '__doc__': doc, '__module__': __name__}
    )


for _name, _settings in ORIGINAL_NAMES.items():
    MODELS.register_module(name=_name, module=_original_factory(_name, _settings))
