"""Loading released CrossFormer checkpoints into the dense backbone.

The released classification files store ``ckpt['model']`` (and, in some files,
a yacs config object, read as data by :mod:`.safe_load`); detection /
segmentation files store ``ckpt['state_dict']`` with ``backbone.`` prefixes.
:func:`unwrap_state_dict` is the one place that removes the wrappers
(``state_dict`` / ``model`` / ``module.``); :func:`filter_checkpoint`, a pure
function, turns any accepted layout into the backbone's keys and says what it
dropped and why. The loader (:func:`load_backbone_checkpoint`, which reports
every other difference as an error), the backbone's load pre-hooks and the
converters all use it. Every file is read by :func:`load_checkpoint_file`
(the safe loader).
"""

import logging
import os.path as osp
import re
from collections import Counter, OrderedDict
from typing import Any, List, Mapping, NamedTuple, Optional, Tuple

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
#: Keys under which a checkpoint holds its state dict, in the order they are looked
#: up: mmengine / mmdet / mmseg / mmpose files (``state_dict``), the released
#: classification files (``model``).
WRAPPER_KEYS = ('state_dict', 'model')
#: The key prefix of a model saved inside (Distributed)DataParallel.
DDP_PREFIX = 'module.'
#: The key prefix of the backbone in a full model (detector, segmentor, pose model, classifier).
BACKBONE_PREFIX = 'backbone.'

# why filter_checkpoint dropped a key (the values of FilteredCheckpoint.dropped)
#: An index table the original model stored and the backbone derives.
DROPPED_DPB_BUFFER = 'DPB index buffer (derived from the group shape)'
#: The classifier (``head.*``) or final norm (``norm.*``) of a classification file.
DROPPED_CLASSIFIER = 'classifier of a classification file'
#: Anything of a full model outside ``backbone.*`` (neck, heads, ...).
DROPPED_NOT_BACKBONE = 'not part of the backbone (neck / heads of a full model)'


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def load_checkpoint_file(
    filename: str, map_location: MapLocation = 'cpu', allow_nonfinite: Optional[bool] = None
) -> Any:
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
                '`init_cfg=None` to train from scratch'
            )
        return safe_load.load_checkpoint(filename, map_location, allow_nonfinite)
    safe_load.check_finite(checkpoint, filename, allow_nonfinite)
    return checkpoint


def _summary(keys: List[str], limit: int = 12) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > limit else '')


def strip_prefix(state_dict: Mapping[str, Any], prefix: str) -> OrderedDict[str, Any]:
    """``state_dict`` with ``prefix`` removed from every key that starts with it."""
    return OrderedDict(
        (k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state_dict.items()
    )


def unwrap_state_dict(checkpoint: Any, check: bool = True) -> OrderedDict[str, Any]:
    """The state dict of a checkpoint in any wrapper layout.

    ``checkpoint['state_dict']``, else ``checkpoint['model']`` (the first that is a
    mapping), else the checkpoint itself; keys lose the ``module.`` prefix of a
    model saved inside (Distributed)DataParallel. The one unwrapping of the
    package: the loader, the backbone's load pre-hooks, the converters and the
    NaN / Inf check of :mod:`.safe_load` use it.

    Args:
        checkpoint: What ``torch.load`` returned, or what ``load_state_dict`` was given.
        check (bool): Raise unless the result is a mapping of tensors. False (the
            NaN / Inf check) gives ``{}`` for a non-mapping and keeps other values.

    Raises:
        CheckpointMismatchError: ``check`` and no state dict found.
    """
    state_dict = checkpoint
    if isinstance(state_dict, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(state_dict.get(key), Mapping):
                state_dict = state_dict[key]
                break
    if not isinstance(state_dict, Mapping):
        if check:
            raise CheckpointMismatchError(
                'expected a state dict, or a dict holding one under "state_dict" or "model"; '
                f'got {type(state_dict).__name__}'
            )
        return OrderedDict()
    if check:
        others = [
            f'{k} ({type(v).__name__})'
            for k, v in state_dict.items()
            if not isinstance(v, torch.Tensor)
        ]
        if others:
            raise CheckpointMismatchError(
                'expected a state dict, or a dict holding one under "state_dict" or "model"; '
                f'got a dict whose values are not all tensors: {_summary(others, 8)}'
            )
    return strip_prefix(state_dict, DDP_PREFIX)


class FilteredCheckpoint(NamedTuple):
    """What :func:`filter_checkpoint` made of a checkpoint.

    Attributes:
        state_dict: The backbone's weights under the backbone's key names.
        classifier: The classifier parts (``head.*``, ``norm.*``: the names of
            ``CrossFormerClsHead``) of a classification file; empty otherwise.
        dropped: Each key of the unwrapped checkpoint that is not in
            ``state_dict`` -> why (``DROPPED_DPB_BUFFER``, ``DROPPED_CLASSIFIER``
            or ``DROPPED_NOT_BACKBONE``), in file order.
        full_model: Whether the backbone's keys had the ``backbone.`` prefix of a
            full model (detector, segmentor, pose model, mmpretrain classifier).
    """

    state_dict: OrderedDict[str, torch.Tensor]
    classifier: OrderedDict[str, torch.Tensor]
    dropped: OrderedDict[str, str]
    full_model: bool


def filter_checkpoint(checkpoint: Any) -> FilteredCheckpoint:
    """The backbone's weights of a checkpoint in any accepted layout: a pure function.

    Accepted: a raw state dict, ``{'model': ...}`` (released classification
    files, with or without their yacs config), ``{'state_dict': ...}`` (mmengine
    files), ``module.`` prefixes (:func:`unwrap_state_dict`); a backbone-only
    file; a released classification file (its DPB index buffers and its
    classifier ``head.*`` / ``norm.*`` dropped); a full model (``backbone.*``
    kept without the prefix, everything else dropped). Nothing is compared with
    a model here: :func:`load_backbone_state_dict` reports missing, unexpected
    and mis-shaped keys. The loader, the backbone's load pre-hooks and the
    converters all filter with this function; ``checkpoint`` is not modified.

    Raises:
        CheckpointMismatchError: ``checkpoint`` holds no state dict.
    """
    state_dict = unwrap_state_dict(checkpoint)
    full_model = any(k.startswith(BACKBONE_PREFIX) for k in state_dict)
    kept: OrderedDict[str, torch.Tensor] = OrderedDict()
    classifier: OrderedDict[str, torch.Tensor] = OrderedDict()
    dropped: OrderedDict[str, str] = OrderedDict()
    for key, value in state_dict.items():
        name = key
        if full_model:
            if not key.startswith(BACKBONE_PREFIX):
                dropped[key] = DROPPED_NOT_BACKBONE
                continue
            name = key[len(BACKBONE_PREFIX) :]
        if DPB_INDEX_BUFFERS.search(name):
            dropped[key] = DROPPED_DPB_BUFFER
        elif name.split('.', 1)[0] in CLASSIFIER_PARTS:
            dropped[key] = DROPPED_CLASSIFIER
            classifier[name] = value
        else:
            kept[name] = value
    return FilteredCheckpoint(kept, classifier, dropped, full_model)


def load_backbone_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = True,
    source: str = 'checkpoint',
    logger: Optional[str] = 'current',
) -> Tuple[List[str], List[str]]:
    """Load ``state_dict`` into ``model``, failing loudly on any difference.

    Shape mismatches are always an error; missing and unexpected keys are an
    error when ``strict`` (else a warning).

    Returns:
        tuple: missing keys and unexpected keys (both empty when strict).
    """
    own = model.state_dict()
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f'{source} does not fit {type(model).__name__}: shape mismatch for '
            f'{_summary(mismatched, 6)}. Is `arch` (embed dims / depths / heads) the one '
            'the checkpoint was trained with?'
        )
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        message = (
            f'{source} does not match {type(model).__name__}: '
            f'missing keys [{_summary(missing)}], '
            f'unexpected keys [{_summary(unexpected)}]. Check `arch` / `use_acl` '
            'against the checkpoint, or pass strict=False to load what matches.'
        )
        if strict:
            raise CheckpointMismatchError(message)
        print_log(message, logger=logger, level=logging.WARNING)
    model.load_state_dict(state_dict, strict=False)
    return missing, unexpected


def load_backbone_checkpoint(
    model: nn.Module,
    filename: str,
    strict: bool = True,
    logger: Optional[str] = 'current',
    allow_nonfinite: Optional[bool] = None,
) -> List[str]:
    """Load a released / converted checkpoint file into a backbone.

    The file is filtered by :func:`filter_checkpoint` (the backbone's load
    pre-hook filters with it too); logs exactly which keys were dropped
    (classifier, final norm, DPB buffers, non-backbone parts of a full model)
    and returns them, sorted. NaN / Inf weights are
    an error unless ``allow_nonfinite`` (the backbone passes its
    ``init_cfg['allow_nonfinite']``; None: ``$CROSSFORMER_MM_ALLOW_NONFINITE``).
    """
    checkpoint = load_checkpoint_file(filename, allow_nonfinite=allow_nonfinite)
    filtered = filter_checkpoint(checkpoint)
    load_backbone_state_dict(
        model, filtered.state_dict, strict=strict, source=f'checkpoint {filename!r}', logger=logger
    )
    dropped = sorted(filtered.dropped)
    reasons = Counter(filtered.dropped.values())
    print_log(
        f'Loaded {len(filtered.state_dict)} tensors from {filename}; dropped '
        f'{len(dropped)} keys not used by the backbone '
        f'({", ".join(f"{n} {why}" for why, n in reasons.items()) or "none"}): '
        f'{_summary(dropped, 20)}',
        logger=logger,
    )
    return dropped
