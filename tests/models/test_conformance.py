"""The backbone reproduces recorded outputs of the original implementation.

Fixtures: ``shared/reference/fixtures`` (see its README). Weights come from
``det_weights.py`` of the reference data (the ``deterministic_weights`` fixture),
derived from the key names alone.
"""

import os.path as osp

import numpy as np
import pytest
import torch

from crossformer_mm.models.backbones import CrossFormer

CASES = {
    # fixture: backbone as the original code built it
    'crossformer_s_iclr_224': dict(arch='small', lda_mode='iclr'),
    'crossformer_s_iclr_256x352': dict(arch='small', lda_mode='iclr'),
    'crossformer_s_main_256x352': dict(arch='small', lda_mode='windowed'),
    'crossformerpp_s_main_256x352': dict(
        arch='pp-small', group_size=[7] * 4, crs_interval=[8, 4, 2, 1]
    ),
}


@pytest.mark.parametrize('use_fused_attn', [True, False], ids=['fused', 'reference'])
@pytest.mark.parametrize('fixture', sorted(CASES))
def test_matches_original(fixture, use_fused_attn, reference_dir, deterministic_weights):
    model = CrossFormer(drop_path_rate=0.0, use_fused_attn=use_fused_attn, **CASES[fixture])
    shapes = {k: v.shape for k, v in model.state_dict().items() if v.is_floating_point()}
    model.load_state_dict(deterministic_weights.deterministic_state_dict(shapes))
    model.eval()
    data = np.load(osp.join(reference_dir, 'fixtures', f'{fixture}.npz'))
    with torch.no_grad():
        outs = model(torch.from_numpy(data['input']))
    assert len(outs) == 4
    for i, out in enumerate(outs):
        expected = torch.from_numpy(data[f'out{i}'])
        assert out.shape == expected.shape
        error = (out - expected).abs().max().item()
        assert error <= 1e-4, f'stage {i}: max abs error {error:.2e}'


def test_lda_modes_really_differ_at_detection_sizes(reference_dir):
    """Guards the fixtures themselves: the two LDA semantics are distinguishable."""
    iclr = np.load(osp.join(reference_dir, 'fixtures', 'crossformer_s_iclr_256x352.npz'))
    main = np.load(osp.join(reference_dir, 'fixtures', 'crossformer_s_main_256x352.npz'))
    assert np.abs(iclr['out2'] - main['out2']).max() > 1.0
