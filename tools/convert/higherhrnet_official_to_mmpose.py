"""Convert an original HigherHRNet checkpoint to this package's mmpose layout.

    python tools/convert/higherhrnet_official_to_mmpose.py SRC DST

SRC is a released file of github.com/HRNet/HigherHRNet-Human-Pose-Estimation
(``pose_higher_hrnet_w32_512.pth``, ``..._w32_640.pth``, ``..._w48_640.pth``).
The 640 files were saved from the fp16 wrapper (``nn.Sequential(tofp16(),
model)``): their keys start with ``1.`` and tensors may be half; the prefix is
stripped and floating-point tensors are cast to float32. ``final_layers.*`` /
``deconv_layers.*`` become ``head.*`` (the names of
``AEHigherResolutionHead``), everything else ``backbone.*`` (mmpose's
``HRNet`` has the original names). DST is an mmengine-style checkpoint
(``{'state_dict': ..., 'meta': ...}``) for the configs
``configs/higherhrnet_w{32,48}_coco_{512x512,640x640}.py``.
"""
import argparse
import os.path as osp
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from crossformer_mm.utils.checkpoint import load_checkpoint_file

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Convert an original HigherHRNet checkpoint to mmpose keys')
    parser.add_argument('src', help='original checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    args = parser.parse_args()

    original = unwrap_state_dict(load_checkpoint_file(args.src))
    half = sum(v.dtype == torch.float16 for v in original.values())
    converted = convert_state_dict(original)
    meta = dict(converted_from=args.src, tool=osp.basename(__file__))
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    num_params = sum(v.numel() for k, v in converted.items()
                     if v.is_floating_point() and 'running_' not in k)
    print(f'{args.src}: {len(converted)} entries ({half} fp16 tensors cast to '
          f'float32), {num_params:,} weights -> {args.dst}')


if __name__ == '__main__':
    main()
