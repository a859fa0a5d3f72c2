"""Convert an original HigherHRNet checkpoint to this package's mmpose layout.

    python tools/convert/higherhrnet_official_to_mmpose.py SRC DST

SRC is a released file of github.com/HRNet/HigherHRNet-Human-Pose-Estimation
(``pose_higher_hrnet_w32_512.pth``, ``..._w32_640.pth``, ``..._w48_640.pth``).
The 640 files were saved from the fp16 wrapper (``nn.Sequential(tofp16(),
model)``): their keys start with ``1.`` and tensors may be half; the prefix is
stripped and floating-point tensors are cast to float32. ``final_layers.*`` /
``deconv_layers.*`` become ``head.*`` (the names of
``AEHigherResolutionHead``), everything else ``backbone.*`` (mmpose's
``HRNet`` has the original names). The COCO files (17 joints) and the
CrowdPose files (14 joints: ``final_layers.0`` 28 outputs, ``final_layers.1``
14) are told apart by their head. DST is an mmengine-style checkpoint
(``{'state_dict': ..., 'meta': ...}``) whose meta holds the dataset's
``dataset_meta`` (read by ``mmpose.apis.init_model`` and
``MMPoseInferencer``), for the configs
``configs/higherhrnet_w{32,48}_{coco,crowdpose}_{512x512,640x640}.py``.
"""

import argparse
import os.path as osp

import torch

from crossformer_mm.pose.convert import (
    DATASETS,
    convert_state_dict,
    dataset_meta_for,
    head_layout,
    original_state_dict,
)
from crossformer_mm.utils.checkpoint import load_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Convert an original HigherHRNet checkpoint to mmpose keys'
    )
    parser.add_argument('src', help='original checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    args = parser.parse_args()

    original = original_state_dict(load_checkpoint_file(args.src))
    half = sum(v.dtype == torch.float16 for v in original.values())
    converted = convert_state_dict(original)
    num_keypoints, _ = head_layout(converted)
    meta = dict(
        converted_from=args.src,
        tool=osp.basename(__file__),
        dataset_meta=dataset_meta_for(num_keypoints),
    )
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    num_params = sum(
        v.numel() for k, v in converted.items() if v.is_floating_point() and 'running_' not in k
    )
    dataset = DATASETS[num_keypoints]
    print(
        f'{args.src}: {len(converted)} entries ({half} fp16 tensors cast to '
        f'float32), {num_params:,} weights, {num_keypoints} joints '
        f'({dataset["name"]}: {dataset["configs"]}) -> {args.dst}'
    )


if __name__ == '__main__':
    main()
