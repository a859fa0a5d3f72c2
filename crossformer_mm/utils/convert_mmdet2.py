"""Released CrossFormer detection checkpoints (mmdet 2.x) -> mmdet 3.x.

mmdet 3.x kept every parameter name of these detectors (backbone, FPN, RPN,
RoI / RetinaNet heads), so the state dict is copied unchanged; what differs is
the metadata: ``meta['CLASSES']`` becomes ``meta['dataset_meta']['classes']``,
and the mmcv 1.x config text, hook messages and optimizer state are dropped.
The backbone's DPB index buffers, if the file holds them, are dropped as the
backbone's loader drops them (the model derives them). The result is
validated against a model (every key present, no extra key, every shape
equal). Command line: ``tools/convert/crossformer_det_v2_to_v3.py``.
"""

from collections import OrderedDict
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from .checkpoint import DROPPED_DPB_BUFFER, filter_checkpoint, unwrap_state_dict


def state_dict_differences(model: torch.nn.Module, state_dict: dict) -> List[str]:
    """Human-readable differences between a model and a state dict."""
    own = model.state_dict()
    problems = [f'missing: {k}' for k in own if k not in state_dict]
    problems += [f'unexpected: {k}' for k in state_dict if k not in own]
    problems += [
        f'shape of {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    return problems


def convert(checkpoint: dict, model: torch.nn.Module) -> Tuple[dict, dict]:
    """mmdet 3.x checkpoint of an mmdet 2.x one; also what was dropped: the
    other top-level entries, the old meta fields (``meta``) and the backbone's
    DPB index buffers (``dpb_index_buffers``, through
    :func:`~crossformer_mm.utils.checkpoint.filter_checkpoint`).

    Raises ``ValueError`` listing every difference to ``model``.
    """
    state_dict = unwrap_state_dict(checkpoint)
    # the backbone's DPB index buffers (which the model derives) go, as the
    # backbone's loader drops them; every other key must match the model
    own = model.state_dict()
    buffers = {
        k
        for k, why in filter_checkpoint(state_dict).dropped.items()
        if why == DROPPED_DPB_BUFFER and k not in own
    }
    state_dict = OrderedDict((k, v) for k, v in state_dict.items() if k not in buffers)
    problems = state_dict_differences(model, state_dict)
    if problems:
        shown = '\n  '.join(problems[:20])
        raise ValueError(
            f"the checkpoint does not match the config's model "
            f'({len(problems)} differences):\n  {shown}\nCheck that the '
            'config is the one the checkpoint was trained with.'
        )
    old_meta = dict(checkpoint.get('meta') or {})
    classes = old_meta.pop('CLASSES', None)
    meta = dict(converted_from='mmdet 2.x')
    if classes is not None:
        meta['dataset_meta'] = dict(classes=tuple(classes))
    dropped = {k: v for k, v in checkpoint.items() if k not in ('state_dict', 'model', 'meta')}
    dropped['meta'] = sorted(old_meta)
    dropped['dpb_index_buffers'] = sorted(buffers)
    return dict(meta=meta, state_dict=state_dict), dropped


def build_model(config: str) -> torch.nn.Module:
    """The model of a config, without loading any pretrained weights."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)
