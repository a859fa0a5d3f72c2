"""Original HigherHRNet checkpoints -> this package's mmpose layout.

The released files of github.com/HRNet/HigherHRNet-Human-Pose-Estimation
(``pose_higher_hrnet_w32_512.pth``, ``..._w32_640.pth``, ``..._w48_640.pth``):
the 640 files were saved from the fp16 wrapper (``nn.Sequential(tofp16(),
model)``), so their keys start with ``1.`` and tensors may be half; the prefix is
stripped and floating-point tensors are cast to float32. ``final_layers.*`` /
``deconv_layers.*`` become ``head.*`` (the names of ``AEHigherResolutionHead``),
everything else ``backbone.*`` (mmpose's ``HRNet`` has the original names).
Command line: ``tools/convert/higherhrnet_official_to_mmpose.py``.
"""
from collections import OrderedDict
from typing import Dict, Mapping

import torch

HEAD_PREFIXES = ('final_layers.', 'deconv_layers.')
WRAPPER_PREFIXES = ('module.', '1.')
REQUIRED_KEYS = ('conv1.weight', 'final_layers.0.weight',
                 'deconv_layers.0.0.0.weight')


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The original state dict: nested ``state_dict`` and the ``module.`` /
    fp16-wrapper ``1.`` prefixes removed."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if state_dict and all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                stripped = True
    missing = [k for k in REQUIRED_KEYS if k not in state_dict]
    if missing:
        raise KeyError(
            f'not an original HigherHRNet state dict: keys {missing} are '
            f'missing (first keys: {list(state_dict)[:5]})')
    return state_dict


def convert_state_dict(checkpoint: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Original (possibly fp16-wrapped) HigherHRNet keys -> mmpose keys.

    Args:
        checkpoint (Mapping): the loaded original file (a state dict, or a
            dict holding one under ``state_dict``).

    Returns:
        OrderedDict: ``backbone.*`` / ``head.*`` keys, floating-point tensors
        in float32, integer buffers unchanged.
    """
    converted = OrderedDict()
    for key, value in unwrap_state_dict(checkpoint).items():
        prefix = 'head.' if key.startswith(HEAD_PREFIXES) else 'backbone.'
        if value.is_floating_point():
            value = value.float()
        converted[prefix + key] = value
    return converted
