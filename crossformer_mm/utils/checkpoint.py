"""Loading released CrossFormer checkpoints into the dense backbone.

The released classification files store ``ckpt['model']`` (and, in some files,
a yacs config object, read as data by :mod:`.safe_load`); detection /
segmentation files store ``ckpt['state_dict']`` with ``backbone.`` prefixes.
:func:`backbone_state_dict` turns any of them into the backbone's key layout
and says what it dropped; :func:`load_backbone_checkpoint` loads it and
reports every other difference as an error. Every file is read by
:func:`load_checkpoint_file` (the safe loader).
"""
import logging
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from . import safe_load
from .safe_load import MapLocation

#: The DPB index buffers that the original classification model stored beside
#: every attention (the backbone derives them from the group shape).
DPB_INDEX_BUFFERS = re.compile(r'\.attn\.(biases|relative_position_index)$')
#: Top-level parts of a classification checkpoint: the classifier and the final norm.
CLASSIFIER_PARTS = ('head', 'norm')


def released_only_key(name: str, with_classifier: bool = True) -> bool:
    """Whether a key of a released classification file has no place in the
    backbone: a DPB index buffer, or (``with_classifier``) the classifier
    (``head.*``) or the final norm (``norm.*``)."""
    return bool(DPB_INDEX_BUFFERS.search(name)) or (
        with_classifier and name.split('.', 1)[0] in CLASSIFIER_PARTS)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def load_checkpoint_file(filename: str, map_location: MapLocation = 'cpu',
                         allow_nonfinite: Optional[bool] = None) -> Any:
    """Read a checkpoint from a path or URL with the safe loader.

    Local files and http(s) URLs go through :mod:`crossformer_mm.utils.safe_load`
    (``weights_only=True`` with its allow-list, clear errors for files that are
    no checkpoint, NaN / Inf refused unless ``allow_nonfinite``); other
    schemes through mmengine's :class:`~mmengine.runner.CheckpointLoader`.

    Raises:
        FileNotFoundError: a local file that does not exist.
        UnsafeCheckpointError, InvalidCheckpointError, NonFiniteCheckpointError:
            see :func:`crossformer_mm.utils.safe_load.load_checkpoint`.
    """
    filename = str(filename)
    if filename.startswith(('http://', 'https://')):
        checkpoint = safe_load.load_from_http(filename, map_location=map_location)
    elif re.match(r'^[a-z0-9+.-]+://', filename) or filename.startswith('open-mmlab:'):
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    else:
        if not osp.exists(osp.expanduser(filename)):
            raise FileNotFoundError(
                f'checkpoint file {filename!r} does not exist: download it, point '
                '`init_cfg.checkpoint` (e.g. --cfg-options '
                'model.backbone.init_cfg.checkpoint=PATH) at it, or set '
                '`init_cfg=None` to train from scratch')
        return safe_load.load_checkpoint(filename, map_location, allow_nonfinite)
    safe_load.check_finite(checkpoint, filename, allow_nonfinite)
    return checkpoint


def unwrap_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The state dict inside a raw / ``{'model': ...}`` / ``{'state_dict': ...}`` checkpoint."""
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointMismatchError(
            'expected a state dict, or a dict holding one under "state_dict" or "model"; '
            f'got {type(checkpoint).__name__} with keys {list(checkpoint)[:8] if isinstance(checkpoint, Mapping) else "-"}')
    return dict(checkpoint)


def backbone_state_dict(checkpoint: Any) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Backbone weights of a classification, backbone or full-model checkpoint.

    Strips ``module.`` and ``backbone.`` prefixes; from a full model keeps only
    the ``backbone.`` entries; drops what :func:`released_only_key` names.

    Returns:
        tuple: the backbone state dict and the sorted list of dropped keys
        (as named in the checkpoint).
    """
    state_dict = unwrap_state_dict(checkpoint)
    if any(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                      for k, v in state_dict.items()}
    has_backbone_prefix = any(k.startswith('backbone.') for k in state_dict)
    kept: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped = []
    for key, value in state_dict.items():
        if has_backbone_prefix:
            if not key.startswith('backbone.'):
                dropped.append(key)  # neck / heads of a full model
                continue
            name = key[len('backbone.'):]
        else:
            name = key
        if released_only_key(name):
            dropped.append(key)
        else:
            kept[name] = value
    return kept, sorted(dropped)


def _summary(keys: List[str], limit: int = 12) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > limit else '')


def load_backbone_state_dict(model: nn.Module,
                             state_dict: Mapping[str, torch.Tensor],
                             strict: bool = True,
                             source: str = 'checkpoint',
                             logger: Optional[str] = 'current') -> Tuple[List[str], List[str]]:
    """Load ``state_dict`` into ``model``, failing loudly on any difference.

    Shape mismatches are always an error; missing and unexpected keys are an
    error when ``strict`` (else a warning).

    Returns:
        tuple: missing keys and unexpected keys (both empty when strict).
    """
    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise CheckpointMismatchError(
            f'{source} does not fit {type(model).__name__}: shape mismatch for '
            f'{_summary(mismatched, 6)}. Is `arch` (embed dims / depths / heads) the one '
            'the checkpoint was trained with?')
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        message = (f'{source} does not match {type(model).__name__}: '
                   f'missing keys [{_summary(missing)}], '
                   f'unexpected keys [{_summary(unexpected)}]. Check `arch` / `use_acl` '
                   'against the checkpoint, or pass strict=False to load what matches.')
        if strict:
            raise CheckpointMismatchError(message)
        print_log(message, logger=logger, level=logging.WARNING)
    model.load_state_dict(state_dict, strict=False)
    return missing, unexpected


def load_backbone_checkpoint(model: nn.Module,
                             filename: str,
                             strict: bool = True,
                             logger: Optional[str] = 'current',
                             allow_nonfinite: Optional[bool] = None) -> List[str]:
    """Load a released / converted checkpoint file into a backbone.

    Logs exactly which keys were dropped (classifier, final norm, DPB buffers,
    non-backbone parts of a full model) and returns them. NaN / Inf weights are
    an error unless ``allow_nonfinite`` (the backbone passes its
    ``init_cfg['allow_nonfinite']``; None: ``$CROSSFORMER_MM_ALLOW_NONFINITE``).
    """
    checkpoint = load_checkpoint_file(filename, allow_nonfinite=allow_nonfinite)
    state_dict, dropped = backbone_state_dict(checkpoint)
    load_backbone_state_dict(model, state_dict, strict=strict,
                             source=f'checkpoint {filename!r}', logger=logger)
    print_log(f'Loaded {len(state_dict)} tensors from {filename}; dropped '
              f'{len(dropped)} keys not used by the backbone: {_summary(dropped, 20)}',
              logger=logger)
    return dropped
