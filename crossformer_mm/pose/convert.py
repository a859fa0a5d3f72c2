"""Original HigherHRNet checkpoints -> this package's mmpose layout.

The released files of github.com/HRNet/HigherHRNet-Human-Pose-Estimation
(``pose_higher_hrnet_w32_512.pth``, ``..._w32_640.pth``, ``..._w48_640.pth``):
the 640 files were saved from the fp16 wrapper (``nn.Sequential(tofp16(),
model)``), so their keys start with ``1.`` and tensors may be half; the prefix is
stripped and floating-point tensors are cast to float32. ``final_layers.*`` /
``deconv_layers.*`` become ``head.*`` (the names of ``AEHigherResolutionHead``),
everything else ``backbone.*`` (mmpose's ``HRNet`` has the original names).
The COCO files (17 joints: ``final_layers.0`` has 34 outputs, ``final_layers.1``
17) and the CrowdPose files (14 joints: 28 and 14) convert alike;
:func:`head_layout` tells them apart. Command line:
``tools/convert/higherhrnet_official_to_mmpose.py``.
"""

from collections import OrderedDict
from typing import Any, Dict, Mapping, Tuple

import torch

from ..utils.checkpoint import strip_prefix, unwrap_state_dict

HEAD_PREFIXES = ('final_layers.', 'deconv_layers.')
#: The key prefix of the fp16 wrapper ``nn.Sequential(tofp16(), model)``.
FP16_WRAPPER_PREFIX = '1.'
REQUIRED_KEYS = ('conv1.weight', 'final_layers.0.weight', 'deconv_layers.0.0.0.weight')


def original_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The original state dict: the wrappers removed by the package's
    :func:`~crossformer_mm.utils.checkpoint.unwrap_state_dict` (``state_dict``
    / ``model``, ``module.``), then the fp16-wrapper ``1.`` prefix.

    Raises:
        KeyError: not an original HigherHRNet state dict.
    """
    state_dict = unwrap_state_dict(checkpoint)
    if state_dict and all(k.startswith(FP16_WRAPPER_PREFIX) for k in state_dict):
        state_dict = strip_prefix(state_dict, FP16_WRAPPER_PREFIX)
    missing = [k for k in REQUIRED_KEYS if k not in state_dict]
    if missing:
        raise KeyError(
            f'not an original HigherHRNet state dict: keys {missing} are '
            f'missing (first keys: {list(state_dict)[:5]})'
        )
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
    for key, value in original_state_dict(checkpoint).items():
        prefix = 'head.' if key.startswith(HEAD_PREFIXES) else 'backbone.'
        if value.is_floating_point():
            value = value.float()
        converted[prefix + key] = value
    return converted


#: The datasets of the released models by their number of joints, with the
#: mmpose dataset meta file and this package's configs for them.
DATASETS = {
    17: dict(
        name='coco',
        metainfo='configs/_base_/datasets/coco.py',
        configs='configs/higherhrnet_w{32,48}_coco_*.py',
    ),
    14: dict(
        name='crowdpose',
        metainfo='configs/_base_/datasets/crowdpose.py',
        configs='configs/higherhrnet_w{32,48}_crowdpose_*.py',
    ),
}


def head_layout(state_dict: Mapping[str, torch.Tensor]) -> Tuple[int, int]:
    """(joints K, tag dimensions L) of a HigherHRNet head, original
    (``final_layers.*``) or converted (``head.final_layers.*``) keys:
    ``final_layers.0`` predicts K heatmaps and K * L tags, the last final
    layer K heatmaps (COCO: 34 and 17 -> (17, 1); CrowdPose: 28 and 14 ->
    (14, 1))."""
    prefix = 'head.' if 'head.final_layers.0.weight' in state_dict else ''
    finals = sorted(
        int(k.split('.')[-2])
        for k in state_dict
        if k.startswith(f'{prefix}final_layers.') and k.endswith('.weight')
    )
    if not finals:
        raise KeyError('no final_layers.*.weight: not a HigherHRNet state dict')
    first = state_dict[f'{prefix}final_layers.0.weight'].shape[0]
    num_keypoints = state_dict[f'{prefix}final_layers.{finals[-1]}.weight'].shape[0]
    if len(finals) < 2 or first % num_keypoints or first == num_keypoints:
        raise ValueError(
            f'final_layers.0 has {first} outputs and final_layers.{finals[-1]} '
            f'{num_keypoints}: expected K heatmaps + K * L tags and K heatmaps'
        )
    return num_keypoints, first // num_keypoints - 1


def dataset_meta_for(num_keypoints: int) -> dict:
    """mmpose's parsed dataset meta information (``model.dataset_meta``) of the
    released models' dataset with ``num_keypoints`` joints (COCO 17, CrowdPose
    14), for the checkpoint meta that ``MMPoseInferencer`` and ``init_model``
    read."""
    if num_keypoints not in DATASETS:
        raise ValueError(
            f'no released HigherHRNet has {num_keypoints} joints; '
            f'known: {sorted(DATASETS)} ({[d["name"] for d in DATASETS.values()]})'
        )
    import warnings

    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    with warnings.catch_warnings():  # "resolved to mmpose's .mim/configs"
        warnings.simplefilter('ignore', UserWarning)
        return parse_pose_metainfo(dict(from_file=DATASETS[num_keypoints]['metainfo']))
