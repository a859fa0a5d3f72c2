"""The fast LSDA path (fused SDPA, caches, BiasedFlashAttention) against the reference path.

In CPU training the fast path has three kernels: the compiled one of
``cpu_attention`` (forward and backward, any group size), and without it
explicit kernels for small groups, PyTorch's flash kernel + the Python backward
of BiasedFlashAttention for larger ones; the ``train_kernel`` fixture forces each
on the small test groups.
"""
import copy

import pytest
import torch

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers import LSDA
from crossformer_mm.models.layers.cpu_attention import ENABLE_ENV, cpu_supported, kernel_available
from crossformer_mm.models.layers.dpb import offset_tables
from crossformer_mm.models.layers.lsda import BiasedFlashAttention, cached_key_padding_mask

# attn_type, lda_mode, group_size, interval, (H, W), batch
CASES = {
    'sda-padded': ('sda', 'iclr', 4, 1, (10, 11), 2),
    'sda-exact': ('sda', 'iclr', 4, 1, (8, 12), 1),
    'lda-iclr-padded': ('lda', 'iclr', 4, 3, (10, 11), 2),
    'lda-iclr-odd-groups': ('lda', 'iclr', 7, 8, (25, 38), 1),   # 4x5 groups, 64 of them
    'lda-windowed-padded': ('lda', 'windowed', 2, 3, (10, 13), 2),  # fully padded groups
    'lda-windowed-exact': ('lda', 'windowed', 3, 2, (12, 18), 1),
    'small-iclr': ('lda', 'iclr', 7, 2, (5, 9), 2),                 # min side <= G: SDA
    'small-windowed': ('sda', 'windowed', 7, 2, (6, 9), 1),         # one 6x9 group
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
    outs = out if isinstance(out, tuple) else (out, )
    generator = torch.Generator().manual_seed(1)
    sum((o * torch.randn(o.shape, generator=generator)).sum() for o in outs).backward()
    detached = tuple(o.detach() for o in outs)
    return (detached if isinstance(out, tuple) else detached[0], x.grad,
            {n: p.grad for n, p in module.named_parameters()})


@pytest.fixture(params=['compiled', 'flash', 'explicit'])
def train_kernel(request, monkeypatch) -> str:
    """The CPU training kernel of the fast path, for every group size."""
    if request.param == 'compiled':
        assert kernel_available() == cpu_supported()  # built wherever the CPU has AVX-512
    else:
        monkeypatch.setenv(ENABLE_ENV, '0')
        factor = 0 if request.param == 'flash' else 1 << 20
        monkeypatch.setattr(LSDA, 'explicit_group_factor', factor)
    return request.param


@pytest.mark.parametrize('case', sorted(CASES))
def test_fast_path_matches_reference_outputs_and_gradients(case, train_kernel):
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
    with torch.no_grad():
        fast.eval(), ref.eval()
        torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('case', ['lda-windowed-padded', 'lda-windowed-exact'])
@pytest.mark.parametrize('chunk_scores', [1, 300, 1 << 22])
def test_flash_backward_chunking_does_not_change_gradients(case, chunk_scores, monkeypatch):
    """Chunks of one group, of several groups, of whole images; per-group
    (padded) and shared masks: the same gradients."""
    fast, ref, x = _pair(case)
    _, _, grads_r = _grads(ref, x)
    monkeypatch.setenv(ENABLE_ENV, '0')  # the Python backward
    monkeypatch.setattr(BiasedFlashAttention, 'chunk_scores', chunk_scores)
    monkeypatch.setattr(LSDA, 'explicit_group_factor', 0)  # BiasedFlashAttention at any size
    _, _, grads_f = _grads(fast, x)
    for name, grad in grads_r.items():
        torch.testing.assert_close(grads_f[name], grad, atol=1e-5, rtol=1e-5, msg=name)


def _attention_ops(module, x, train):
    module.train(train)
    with torch.profiler.profile() as prof:
        with torch.set_grad_enabled(train):
            out = module(x.requires_grad_(train))
        if train:
            out.sum().backward()
    return {e.key for e in prof.key_averages()}


FLASH = 'aten::_scaled_dot_product_flash_attention_for_cpu'
MATH = 'aten::_scaled_dot_product_attention_math'
KERNEL_FWD = 'crossformer_mm::biased_attention_fwd'
KERNEL_BWD = 'crossformer_mm::biased_attention_bwd'


def test_fast_path_kernels(monkeypatch):
    """With the compiled kernel (AVX-512 CPUs): it runs inference and both passes
    of training (BiasedFlashAttention) at every group size. Without it
    (``$CROSSFORMER_MM_CPU_KERNEL=0``, other CPUs): flash in inference; in
    training explicit kernels for the small groups, flash + BiasedFlashAttention
    for larger ones. The reference: none of them, and no path falls back to
    SDPA's math kernel."""
    fast, ref, x = _pair('lda-iclr-odd-groups')  # 20-token groups, head_dims 32
    for train in (False, True):
        assert not _attention_ops(ref, x, train) & {FLASH, MATH, KERNEL_FWD, KERNEL_BWD}
    if cpu_supported():
        ops = _attention_ops(fast, x, train=False)
        assert KERNEL_FWD in ops and not ops & {FLASH, MATH}
        ops = _attention_ops(fast, x, train=True)
        assert {KERNEL_FWD, KERNEL_BWD, 'BiasedFlashAttentionBackward'} <= ops
        assert not ops & {FLASH, MATH}
        monkeypatch.setenv(ENABLE_ENV, '0')
    assert FLASH in _attention_ops(fast, x, train=False)
    assert LSDA.explicit_group_factor * fast.head_dims >= 20
    ops = _attention_ops(fast, x, train=True)
    assert FLASH not in ops and 'BiasedFlashAttentionBackward' not in ops
    monkeypatch.setattr(LSDA, 'explicit_group_factor', 0.5)  # up to 16 tokens
    ops = _attention_ops(fast, x, train=True)
    assert FLASH in ops and 'BiasedFlashAttentionBackward' in ops
    assert not ops & {MATH, KERNEL_FWD, KERNEL_BWD}


def test_reference_path_uses_no_cache(monkeypatch):
    """The reference recomputes tables and masks on every call."""
    fast, ref, x = _pair('sda-padded')
    calls = []
    monkeypatch.setattr(LSDA, '_attn_mask', lambda *args: calls.append(args))
    offset_tables.cache_clear()
    cached_key_padding_mask.cache_clear()
    with torch.no_grad():
        ref.eval()(x)
    assert calls == [] and not ref._mask_cache
    assert offset_tables.cache_info().currsize == 0
    assert cached_key_padding_mask.cache_info().currsize == 0


def test_eval_cache_reused_and_invalidated_by_weight_changes():
    fast, ref, x = _pair('sda-padded')
    fast.eval(), ref.eval()
    with torch.no_grad():
        first = fast(x)
        assert len(fast._mask_cache) == 1
        cached = next(iter(fast._mask_cache.values()))[1]
        fast(x)
        assert next(iter(fast._mask_cache.values()))[1] is cached  # reused

    # an optimizer step on the DPB weights invalidates it
    optimizer = torch.optim.SGD(fast.pos.parameters(), lr=0.1)
    fast.train()
    _grads(fast, x)
    optimizer.step()
    fast.eval()
    with torch.no_grad():
        stepped = fast(x)
        assert next(iter(fast._mask_cache.values()))[1] is not cached
        ref.load_state_dict(fast.state_dict())
        torch.testing.assert_close(stepped, ref(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(stepped, first)

        # so does load_state_dict
        state = {k: v + 0.05 if k.startswith('pos.') else v for k, v in ref.state_dict().items()}
        ref.load_state_dict(state)
        fast.load_state_dict(state)
        torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)


def test_no_cache_while_dpb_needs_gradients():
    fast, _, x = _pair('lda-iclr-padded')
    fast.eval()  # eval mode, but grad enabled and DPB trainable: no caching
    out = fast(x)
    assert not fast._mask_cache
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fast.pos.parameters())
    # a frozen DPB needs no graph: cached even with grad enabled
    fast.pos.requires_grad_(False)
    fast(x.requires_grad_()).sum().backward()
    assert len(fast._mask_cache) == 1


def test_caches_are_bounded():
    fast, _, _ = _pair('lda-windowed-padded')
    fast.eval()
    with torch.no_grad():
        for size in range(7, 7 + 3 * LSDA.mask_cache_size):
            fast(torch.randn(1, size, size + 2, 64))
    assert len(fast._mask_cache) == LSDA.mask_cache_size
    assert offset_tables.cache_info().maxsize is not None
    assert offset_tables.cache_info().currsize <= offset_tables.cache_info().maxsize
    info = cached_key_padding_mask.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize


def test_folded_mask_is_broadcast_unless_padded():
    fast, _, _ = _pair('lda-iclr-odd-groups')
    exact = fast.layout(24, 40)   # multiples of I = 8: no padding
    padded = fast.layout(25, 38)
    assert fast._fold_mask(exact, torch.float32, torch.device('cpu')).shape == (1, 2, 15, 15)
    assert fast._fold_mask(padded, torch.float32, torch.device('cpu')).shape == (64, 2, 20, 20)


def test_backbone_fast_and_reference_agree_in_training():
    """Whole CrossFormer (tiny custom arch, padded maps): same outputs and gradients."""
    arch = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
    torch.manual_seed(0)
    fast = CrossFormer(arch=arch, drop_path_rate=0.).train()
    ref = CrossFormer(arch=arch, drop_path_rate=0., use_fused_attn=False).train()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(1, 3, 76, 100)
    outs_f, dx_f, grads_f = _grads(fast, x)
    outs_r, dx_r, grads_r = _grads(ref, x)
    torch.testing.assert_close(outs_f, outs_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx_f, dx_r, atol=1e-5, rtol=1e-5)
    for name, grad in grads_r.items():
        # sums over whole maps (the CEL convolutions: |grad| ~ 100): 1e-5 of the scale
        scale = max(1., grad.abs().max().item())
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


def test_attention_dropout_falls_back_and_trains():
    fast, _, x = _pair('lda-iclr-padded', attn_drop=0.5)
    fast.train()
    _, _, grads = _grads(fast, x)
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads['pos.pos3.2.weight'].abs().sum() > 0
