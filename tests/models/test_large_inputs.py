"""Extreme aspect ratios stay within memory, with the original's outputs.

In windowed mode (every CrossFormer++ config) a map with ``min(H, W) <= G``
is one SDA group of exactly ``H x W`` tokens. The original uses one square
group of side ``max(H, W)`` whose extra tokens are masked padding: same
outputs on every real token, but a 4000x60 image through the ++ Mask R-CNN
asked for one 12.7 GB allocation.
"""

import sys
import textwrap

import pytest
import torch

from _helpers import REPO_ROOT, run
from crossformer_mm.models.layers import LSDA
from crossformer_mm.models.layers.lsda import GroupLayout, group_layout


class SquareGroupLSDA(LSDA):
    """LSDA with the original CrossFormer++ small-map rule: one square group
    of side max(H, W), padded and masked."""

    def layout(self, height, width):
        side = max(height, width)
        return GroupLayout(height, width, side, side, 1)


def _pair(attn_type, use_fused_attn):
    torch.manual_seed(0)
    new = LSDA(64, 2, 7, 2, attn_type=attn_type, lda_mode='windowed', use_fused_attn=use_fused_attn)
    for p in new.pos.parameters():  # non-trivial DPB, so that every offset matters
        p.data.add_(torch.randn_like(p) * 0.3)
    old = SquareGroupLSDA(
        64, 2, 7, 2, attn_type=attn_type, lda_mode='windowed', use_fused_attn=use_fused_attn
    )
    old.load_state_dict(new.state_dict())
    return new, old


def test_small_map_layout_is_the_whole_map():
    for size in [(3, 20), (20, 3), (7, 7), (1, 500), (168, 4)]:
        for attn_type in ('sda', 'lda'):
            layout = group_layout(*size, attn_type, 7, 2, 'windowed')
            assert (layout.group_h, layout.group_w, layout.num_groups) == (*size, 1)
            assert not layout.is_padded
    # the old square group of a 168x4 map had 168**2 = 28224 tokens; now 672
    assert group_layout(168, 4, 'sda', 7, 1, 'windowed').group_tokens == 672


@pytest.mark.parametrize('size', [(3, 20), (20, 3)])
@pytest.mark.parametrize('attn_type', ['sda', 'lda'])
@pytest.mark.parametrize('use_fused_attn', [True, False])
def test_whole_map_group_equals_the_square_group(size, attn_type, use_fused_attn):
    new, old = _pair(attn_type, use_fused_attn)
    assert old.layout(*size).group_tokens == 400 and new.layout(*size).group_tokens == 60
    x = torch.randn(2, *size, 64)
    new.eval(), old.eval()
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x), atol=1e-6, rtol=1e-5)
    # training: same gradients for the input and every weight (the DPB included)
    new.train(), old.train()
    grads = []
    for module in (new, old):
        inp = x.clone().requires_grad_()
        out = module(inp)
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
        grads.append([inp.grad] + [p.grad for p in module.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('use_fused_attn', [True, False])
def test_whole_map_group_equals_dense_masked_attention(use_fused_attn):
    """Direct reference: every token attends to every token of the 3x20 map,
    with the DPB bias of their raw coordinate offset."""
    new, _ = _pair('lda', use_fused_attn)
    new.eval()
    H, W, C = 3, 20, 64
    x = torch.randn(1, H, W, C)
    coords = (
        torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij'), -1)
        .view(-1, 2)
        .float()
    )
    with torch.no_grad():
        q, k, v = new.qkv(x.view(1, H * W, C)).view(H * W, 3, 2, 32).permute(1, 2, 0, 3)
        bias = new.pos((coords[:, None] - coords[None]).view(-1, 2)).view(H * W, H * W, 2)
        scores = q @ k.transpose(-2, -1) * 32**-0.5 + bias.permute(2, 0, 1)
        expected = new.proj((scores.softmax(-1) @ v).transpose(0, 1).reshape(1, H, W, C))
        torch.testing.assert_close(new(x), expected, atol=1e-5, rtol=1e-4)


PROBE = """
def address_space_mib():
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith('VmPeak:'))
"""

DETECTOR_SCRIPT = (
    PROBE
    + """
import time
import numpy as np
from mmdet.apis import inference_detector, init_detector

# the stock config, no ImageNet file; score_thr 0 so that the mask head runs too
model = init_detector('configs/mask_rcnn_crossformerpp_s_fpn_1x_coco.py', None, device='cpu',
                      cfg_options={'model.backbone.init_cfg': None,
                                   'model.test_cfg.rcnn.score_thr': 0.0})
rng = np.random.default_rng(0)
for h, w in [(4000, 60), (60, 4000)]:
    start = time.time()
    result = inference_detector(model, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    print(f'image {h}x{w}: batch_input_shape {tuple(result.batch_input_shape)} '
          f'masks {tuple(result.pred_instances.masks.shape)} '
          f'{time.time() - start:.1f}s, address space {address_space_mib()} MiB', flush=True)
"""
)

BACKBONE_SCRIPT = (
    PROBE
    + """
import time
import torch
from mmengine.config import Config
from crossformer_mm.models.backbones import CrossFormer

cfg = Config.fromfile('configs/mask_rcnn_crossformerpp_s_fpn_1x_coco.py').model.backbone
detection = dict(group_size=cfg.group_size, crs_interval=cfg.crs_interval)
for name, kwargs in [('detection G/I', detection), ('pp-small G/I', {})]:
    model = CrossFormer(arch='pp-small', drop_path_rate=0., **kwargs).eval()
    for h, w in [(4000, 60), (60, 4000)]:
        start = time.time()
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        print(f'{name} {h}x{w}: {[tuple(o.shape[2:]) for o in outs]} '
              f'{time.time() - start:.1f}s, address space {address_space_mib()} MiB', flush=True)
"""
)


def _run_limited(tmp_path, script: str, limit_kib: int) -> str:
    path = tmp_path / 'script.py'
    path.write_text(textwrap.dedent(script))
    return run(
        ['bash', '-c', f'ulimit -v {limit_kib} && exec "{sys.executable}" "{path}"'],
        cwd=REPO_ROOT,
        timeout=600,
    )


@pytest.mark.slow
def test_pp_mask_rcnn_runs_extreme_aspect_ratios_under_6_gib(tmp_path):
    out = _run_limited(tmp_path, DETECTOR_SCRIPT, 6 * 1024 * 1024)
    print(out[-800:])
    # the test pipeline resizes to (1333, 800) keep-ratio and pads to 32
    assert 'image 4000x60: batch_input_shape (1344, 32) masks (100, 4000, 60)' in out
    assert 'image 60x4000: batch_input_shape (32, 1344) masks (100, 60, 4000)' in out


@pytest.mark.slow
def test_pp_backbone_runs_unresized_extreme_aspect_ratios_under_4_gib(tmp_path):
    out = _run_limited(tmp_path, BACKBONE_SCRIPT, 4 * 1024 * 1024)
    print(out[-800:])
    for name in ('detection G/I', 'pp-small G/I'):
        assert f'{name} 4000x60: [(1000, 15), (500, 7), (250, 3), (125, 1)]' in out
        assert f'{name} 60x4000: [(15, 1000), (7, 500), (3, 250), (1, 125)]' in out
