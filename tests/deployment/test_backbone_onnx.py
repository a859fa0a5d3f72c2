"""ONNX export of the CrossFormer backbone (crossformer_mm.deployment): the
export-time layout (always padded, padding always masked) gives the eager
numbers; the dynamo export with dynamic batch / height / width runs in ONNX
Runtime at sizes it was not traced at, for both LDA modes, with standard
operators only; so does the TorchScript exporter's with dynamic axes."""

import dataclasses
import math

import pytest
import torch

from crossformer_mm.deployment import (
    compare,
    export_onnx,
    min_dynamic_size,
    non_standard_ops,
    ort_session,
    small_map_limit,
)
from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.backbones.crossformer import ARCH_SETTINGS
from crossformer_mm.models.layers import LSDA
from crossformer_mm.models.layers.lsda import ceil_div

#: 224 (last-stage map of exactly G, square), detection / segmentation sizes,
#: and a size that is not a multiple of 32 (every stage padded)
SIZES = [(224, 224), (512, 512), (800, 1216), (600, 1000), (300, 452)]
TOLERANCE = 1e-4  # max|ort - eager| / max|eager|, per stage


def toy_backbone(lda_mode: str) -> CrossFormer:
    """A narrow CrossFormer with an SDA and an LDA block per stage, the
    released group sizes / intervals of ``lda_mode`` (CrossFormer++ cooling
    layers with 'windowed'), non-trivial weights."""
    settings = ARCH_SETTINGS['small' if lda_mode == 'iclr' else 'pp-small']
    arch = dict(
        embed_dims=32,
        depths=(2, 2, 4, 2) if lda_mode == 'windowed' else (2, 2, 2, 2),  # windowed: an ACL
        num_heads=(1, 2, 4, 8),
        group_size=settings['group_size'],
        crs_interval=settings['crs_interval'],
        lda_mode=lda_mode,
        use_acl=settings['use_acl'],
    )
    torch.manual_seed(0)
    model = CrossFormer(arch=arch, drop_path_rate=0.0).eval()
    model.init_weights()
    for p in model.parameters():  # LayerNorm / DPB away from their initial constants
        p.data.add_(torch.randn_like(p) * 0.02)
    return model


def test_ceil_div_is_exact():
    for a in range(1, 300):
        for b in range(1, 40):
            assert ceil_div(a, b) == math.ceil(a / b)


def test_min_dynamic_size_of_released_archs():
    for arch, settings in ARCH_SETTINGS.items():
        assert small_map_limit(settings['group_size']) == 256, arch  # 32 * (7 + 1)
    assert min_dynamic_size(toy_backbone('iclr')) == 256
    three_stages = CrossFormer(
        arch=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=1), out_indices=(0, 1, 2)
    )
    assert min_dynamic_size(three_stages) == 128  # the last stage does not run


# attn_type, lda_mode, group_size, interval, (H, W): padded and unpadded layouts
LAYOUTS = [
    ('sda', 'iclr', 7, 1, (14, 21)),  # exact: no padding in eager
    ('sda', 'iclr', 7, 1, (10, 11)),
    ('lda', 'iclr', 7, 8, (25, 38)),
    ('lda', 'iclr', 7, 2, (16, 16)),  # exact
    ('lda', 'windowed', 4, 2, (16, 24)),  # exact
    ('lda', 'windowed', 2, 3, (10, 13)),  # fully padded groups
    ('sda', 'windowed', 7, 2, (6, 9)),  # small map: one 6x9 group
]


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('case', LAYOUTS, ids=lambda c: f'{c[0]}-{c[1]}-{c[4][0]}x{c[4][1]}')
def test_export_layout_gives_the_eager_numbers(case, fused):
    """The layout of symbolic sizes pads and masks always: a zero-width pad and
    an all-zero mask leave every output as eager computes it."""
    attn_type, lda_mode, group_size, interval, size = case
    torch.manual_seed(0)
    attn = LSDA(64, 2, group_size, interval, attn_type=attn_type, lda_mode=lda_mode).eval()
    attn.use_fused_attn = fused
    for p in attn.pos.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, *size, 64)
    layout = attn.layout(*size)
    symbolic = dataclasses.replace(layout, symbolic=True)
    assert symbolic.is_padded and symbolic.key_padding_mask(x.device) is not None
    with torch.no_grad():
        eager, exported = attn(x), attn.attend(x, symbolic)
    torch.testing.assert_close(exported, eager, atol=2e-6, rtol=1e-5)


@pytest.mark.slow  # two exports of about 15 s
@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
def test_torchscript_dynamic_export_matches_eager_at_other_sizes(lda_mode, tmp_path):
    model = toy_backbone(lda_mode)
    path = str(tmp_path / 'backbone_ts.onnx')
    size = min_dynamic_size(model)
    export_onnx(model, torch.randn(1, 3, size, size), path, exporter='torchscript', min_size=size)
    assert non_standard_ops(path) == []
    session = ort_session(path)
    torch.manual_seed(1)
    for batch, size in [(1, s) for s in SIZES] + [(2, (256, 320))]:
        errors = compare(session, model, torch.randn(batch, 3, *size))['relative_error']
        assert len(errors) == 4 and max(errors) <= TOLERANCE, (size, errors)


@pytest.fixture(scope='module', params=['iclr', 'windowed'])
def exported(request, tmp_path_factory):
    """The toy backbone of one LDA mode, exported once with dynamic sizes."""
    model = toy_backbone(request.param)
    size = min_dynamic_size(model)
    path = str(tmp_path_factory.mktemp('onnx') / f'backbone_{request.param}.onnx')
    export_onnx(model, torch.randn(1, 3, size, size), path, dynamic=True, min_size=size)
    return model, path


@pytest.mark.slow  # an export takes about a minute
def test_dynamic_export_matches_eager_at_other_sizes(exported):
    model, path = exported
    assert non_standard_ops(path) == []
    session = ort_session(path)
    shapes = [(o.shape[0], o.shape[2], o.shape[3]) for o in session.get_outputs()]
    assert all(all(isinstance(d, str) for d in shape) for shape in shapes), shapes
    torch.manual_seed(1)
    for batch, size in [(1, s) for s in SIZES] + [(3, (256, 320))]:
        errors = compare(session, model, torch.randn(batch, 3, *size))['relative_error']
        assert len(errors) == 4 and max(errors) <= TOLERANCE, (size, errors)
