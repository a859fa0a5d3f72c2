"""Fixtures of the pose tests: the original HigherHRNet layout with formula
weights (COCO 17 joints and a CrowdPose 14-joint version of it)."""

import os.path as osp

import pytest
import torch

#: final_layers.0 channels of the 14 CrowdPose joints within the 17-joint
#: layout: heatmaps 0-13 and tags 17-30.
K_COCO, K_CROWD = 17, 14
KEPT_OUT0 = [*range(K_CROWD), *range(K_COCO, K_COCO + K_CROWD)]


@pytest.fixture(scope='session')
def original_state_dict(reference_dir, deterministic_weights):
    """The original W32 layout with formula weights (BN statistics too);
    integer buffers as constructed (0)."""
    rows = [
        line.rstrip('\n').split('\t')
        for line in open(osp.join(reference_dir, 'higherhrnet_w32_keys.txt'))
        if not line.startswith('#')
    ]
    floats = deterministic_weights.deterministic_state_dict(
        {key: eval(shape) for key, shape, dtype, _ in rows if dtype.startswith('float')}
    )
    return {key: floats.get(key, torch.tensor(0)) for key, *_ in rows}


@pytest.fixture(scope='session')
def crowdpose_original(original_state_dict):
    """(14-joint original state dict, 17-joint reference state dict): the
    14-joint file keeps the first 14 joints of the formula weights (heads of
    28 and 14 outputs, as the released CrowdPose files); in the 17-joint
    reference the deconvolution ignores the inputs of joints 14-16, so both
    models give the same outputs on the kept joints."""
    reference, crowd = dict(original_state_dict), dict(original_state_dict)
    deconv = original_state_dict['deconv_layers.0.0.0.weight']  # (32+34, 32, 4, 4)
    dropped = [32 + j for j in range(2 * K_COCO) if j not in KEPT_OUT0]
    reference['deconv_layers.0.0.0.weight'] = deconv.clone()
    reference['deconv_layers.0.0.0.weight'][dropped] = 0
    crowd['deconv_layers.0.0.0.weight'] = deconv[[*range(32), *[32 + j for j in KEPT_OUT0]]].clone()
    for name in ('weight', 'bias'):
        crowd[f'final_layers.0.{name}'] = original_state_dict[f'final_layers.0.{name}'][KEPT_OUT0]
        crowd[f'final_layers.1.{name}'] = original_state_dict[f'final_layers.1.{name}'][:K_CROWD]
    return crowd, reference
