"""The fused LSDA path (SDPA with the folded mask) against the reference path
(explicit matmul + softmax): the same outputs and gradients on every layout."""

import copy

import pytest
import torch

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers import LSDA

# attn_type, lda_mode, group_size, interval, (H, W), batch
CASES = {
    'sda-padded': ('sda', 'iclr', 4, 1, (10, 11), 2),
    'sda-exact': ('sda', 'iclr', 4, 1, (8, 12), 1),
    'lda-iclr-padded': ('lda', 'iclr', 4, 3, (10, 11), 2),
    'lda-iclr-odd-groups': ('lda', 'iclr', 7, 8, (25, 38), 1),  # 4x5 groups, 64 of them
    'lda-windowed-padded': ('lda', 'windowed', 2, 3, (10, 13), 2),  # fully padded groups
    'lda-windowed-exact': ('lda', 'windowed', 3, 2, (12, 18), 1),
    'small-iclr': ('lda', 'iclr', 7, 2, (5, 9), 2),  # min side <= G: SDA
    'small-windowed': ('sda', 'windowed', 7, 2, (6, 9), 1),  # one 6x9 group
    'tiny': ('lda', 'iclr', 7, 8, (1, 1), 2),
    'tiny-rect': ('sda', 'iclr', 7, 8, (1, 3), 1),
}


def _pair(case, **kwargs):
    """A fast LSDA and a reference copy with the same weights."""
    attn_type, lda_mode, group_size, interval, size, batch = CASES[case]
    torch.manual_seed(0)
    fast = LSDA(64, 2, group_size, interval, attn_type=attn_type, lda_mode=lda_mode, **kwargs)
    # non-trivial DPB weights, so that its gradients are not all alike
    for p in fast.pos.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    ref = copy.deepcopy(fast)
    ref.use_fused_attn = False
    return fast, ref, torch.randn(batch, *size, 64)


def _grads(module, x):
    """Output, input gradient and parameter gradients of a fixed random loss."""
    x = x.clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    outs = out if isinstance(out, tuple) else (out,)
    generator = torch.Generator().manual_seed(1)
    sum((o * torch.randn(o.shape, generator=generator)).sum() for o in outs).backward()
    detached = tuple(o.detach() for o in outs)
    return (
        detached if isinstance(out, tuple) else detached[0],
        x.grad,
        {n: p.grad for n, p in module.named_parameters()},
    )


@pytest.mark.parametrize('case', sorted(CASES))
def test_fast_path_matches_reference_outputs_and_gradients(case):
    fast, ref, x = _pair(case)
    fast.train(), ref.train()
    out_f, dx_f, grads_f = _grads(fast, x)
    out_r, dx_r, grads_r = _grads(ref, x)
    torch.testing.assert_close(out_f, out_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx_f, dx_r, atol=1e-5, rtol=1e-5)
    assert set(grads_f) == set(grads_r)
    assert any(name.startswith('pos.') for name in grads_f)
    for name, grad in grads_r.items():
        assert grads_f[name] is not None, f'no gradient for {name} on the fast path'
        torch.testing.assert_close(grads_f[name], grad, atol=1e-5, rtol=1e-5, msg=name)
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            fast.eval(), ref.eval()
            torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)


def _aten_ops(module, x, train):
    module.train(train)
    with torch.profiler.profile() as prof:
        with torch.set_grad_enabled(train):
            out = module(x.requires_grad_(train))
        if train:
            out.sum().backward()
    return {e.key for e in prof.key_averages()}


SDPA = 'aten::scaled_dot_product_attention'


@pytest.mark.parametrize('case', ['sda-padded', 'lda-iclr-odd-groups', 'lda-windowed-exact'])
def test_two_attention_paths(case):
    """The fused path calls SDPA, the reference path no attention kernel."""
    fast, ref, x = _pair(case)
    for train in (False, True):
        ops_fast, ops_ref = _aten_ops(fast, x, train), _aten_ops(ref, x, train)
        assert SDPA in ops_fast
        assert not [op for op in ops_ref if 'scaled_dot_product' in op]


@pytest.mark.parametrize(
    'case, mask_shape',
    [('lda-iclr-odd-groups', (64, 2, 20, 20)), ('sda-exact', (1, 2, 16, 16))],
)
def test_attention_mask_is_shared_unless_padded(case, mask_shape):
    fast, _, x = _pair(case)
    layout = fast.layout(*x.shape[1:3])
    assert fast.attn_mask(layout).shape == mask_shape


def test_derived_tables_are_module_state():
    """The block's own G x G tables are non-persistent buffers: they follow
    ``.to()``, are not in the state dict, and give the tables of other shapes."""
    fast, _, _ = _pair('sda-padded')
    buffers = dict(fast.named_buffers())
    assert buffers['relative_position_index'].shape == (16, 16)
    assert buffers['relative_offsets'].shape == (49, 2)
    assert not set(buffers) & set(fast.state_dict())
    assert fast.to(torch.float64).relative_offsets.dtype == torch.float64
    assert fast.relative_position_index.dtype == torch.long


def test_dpb_weight_changes_take_effect_at_once():
    """Nothing derived from the DPB weights is cached: an optimizer step or a
    ``load_state_dict`` changes the next output."""
    fast, ref, x = _pair('sda-padded')
    fast.eval(), ref.eval()
    with torch.no_grad():
        first = fast(x)
    optimizer = torch.optim.SGD(fast.pos.parameters(), lr=0.1)
    fast.train()
    _grads(fast, x)
    optimizer.step()
    fast.eval()
    with torch.inference_mode():
        stepped = fast(x)
        ref.load_state_dict(fast.state_dict())
        torch.testing.assert_close(stepped, ref(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(stepped, first)
        state = {k: v + 0.05 if k.startswith('pos.') else v for k, v in ref.state_dict().items()}
        ref.load_state_dict(state)
        fast.load_state_dict(state)
        torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)


def test_backbone_fast_and_reference_agree_in_training():
    """Whole CrossFormer (tiny custom arch, padded maps): same outputs and gradients."""
    arch = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
    torch.manual_seed(0)
    fast = CrossFormer(arch=arch, drop_path_rate=0.0).train()
    ref = CrossFormer(arch=arch, drop_path_rate=0.0, use_fused_attn=False).train()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(1, 3, 76, 100)
    outs_f, dx_f, grads_f = _grads(fast, x)
    outs_r, dx_r, grads_r = _grads(ref, x)
    torch.testing.assert_close(outs_f, outs_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx_f, dx_r, atol=1e-5, rtol=1e-5)
    for name, grad in grads_r.items():
        # sums over whole maps (the CEL convolutions: |grad| ~ 100): 1e-5 of the scale
        scale = max(1.0, grad.abs().max().item())
        torch.testing.assert_close(grads_f[name], grad, atol=1e-5 * scale, rtol=1e-5, msg=name)


def test_autocast_bf16_training_runs_on_fast_path():
    """Under CPU bf16 autocast the fast path's gradients are as good as the
    reference's: about 1% from the fp32 gradients, DPB included."""
    fast, ref, x = _pair('lda-windowed-padded')
    _, _, grads_fp32 = _grads(ref, x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out_f, _, grads_f = _grads(fast, x)
        out_r, _, _ = _grads(ref, x)
    assert out_f.dtype == torch.bfloat16
    torch.testing.assert_close(out_f.float(), out_r.float(), atol=0.05, rtol=0.05)
    for prefix in ('', 'pos.'):
        names = [n for n in grads_fp32 if n.startswith(prefix)]
        exact = torch.cat([grads_fp32[n].flatten() for n in names])
        bf16 = torch.cat([grads_f[n].float().flatten() for n in names])
        assert (bf16 - exact).norm() < 0.05 * exact.norm()


def test_attention_dropout_trains():
    fast, _, x = _pair('lda-iclr-padded', attn_drop=0.5)
    fast.train()
    _, _, grads = _grads(fast, x)
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads['pos.pos3.2.weight'].abs().sum() > 0
