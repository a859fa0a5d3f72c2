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

import torch

from crossformer_mm.pose.convert import convert_state_dict, unwrap_state_dict
from crossformer_mm.utils.checkpoint import load_checkpoint_file


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
