"""The compiled CPU attention kernel (``models/layers/cpu_attention.py``): its
outputs and gradients against float64 autograd, its build, cache and fallbacks.

On a CPU without AVX-512 the kernel must report itself unavailable (and LSDA
then runs PyTorch's kernels, which ``test_lsda_fast_path`` checks)."""
import logging
import os
import tempfile

import pytest
import torch
from mmengine.logging import MMLogger

from crossformer_mm.models.layers import cpu_attention
from crossformer_mm.models.layers.cpu_attention import (ENABLE_ENV, KernelBuildError,
                                                         biased_attention,
                                                         biased_attention_backward,
                                                         cpu_supported, kernel_applies,
                                                         kernel_available)

# groups, heads, tokens, mask period (1: shared by the groups)
SHAPES = [(1, 1, 1, 1), (2, 3, 2, 1), (3, 2, 15, 3), (2, 3, 16, 1), (4, 3, 17, 2),
          (2, 4, 31, 1), (1, 5, 32, 1), (6, 3, 33, 3), (6, 3, 49, 1), (2, 2, 64, 1),
          (3, 1, 100, 3), (1, 2, 950, 1)]


def test_available_exactly_on_avx512_cpus():
    assert kernel_available() == cpu_supported()


def _operands(G, H, N, period, seed=0):
    """q, k, v as the strided views LSDA passes (of one (G, N, 3, H, 32) qkv),
    a mask with some keys masked out, and an output gradient."""
    generator = torch.Generator().manual_seed(seed)
    qkv = torch.randn(G, N, 3, H, 32, generator=generator)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    mask = torch.randn(period, H, N, N, generator=generator)
    mask[..., N // 2:][torch.rand(period, H, N, N - N // 2, generator=generator) < 0.3] = -1e4
    return q, k, v, mask, torch.randn(G, H, N, 32, generator=generator)


def _float64_reference(q, k, v, mask, grad_out, scale):
    q, k, v, mask = (t.detach().double().requires_grad_() for t in (q, k, v, mask))
    G, P = q.shape[0], mask.shape[0]
    scores = (q @ k.transpose(-2, -1)) * scale
    scores = (scores.view(G // P, P, *scores.shape[1:]) + mask).view_as(scores)
    out = scores.softmax(-1) @ v
    lse = scores.logsumexp(-1)
    out.backward(grad_out.double())
    return out, lse, q.grad, k.grad, v.grad, mask.grad


requires_kernel = pytest.mark.skipif(not cpu_supported(), reason='needs an AVX-512 CPU')


@requires_kernel
@pytest.mark.parametrize('threads', [1, 2, 3])
@pytest.mark.parametrize('shape', SHAPES, ids=lambda s: 'x'.join(map(str, s)))
def test_outputs_and_gradients_match_float64(shape, threads, monkeypatch):
    """Every tail of the 32-key blocks and 10-row tiles, shared and per-group
    masks, 1-3 threads (private, head-major and per-image mask gradients)."""
    G, H, N, period = shape
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads)
    q, k, v, mask, grad_out = _operands(G, H, N, period)
    scale = 32 ** -0.5
    assert kernel_applies(q, k, v, mask)
    out, lse = biased_attention(q, k, v, mask, scale, return_lse=True)
    grads = biased_attention_backward(q, k, v, mask, out, lse, grad_out, scale)
    expected = _float64_reference(q, k, v, mask, grad_out, scale)
    for name, got, want in zip(('out', 'lse', 'dq', 'dk', 'dv', 'dmask'), (out, lse, *grads),
                               expected):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5, msg=name)


@requires_kernel
def test_bf16_operands_are_computed_in_fp32():
    """bf16 q, k, v, mask: the fp32 results of the bf16 values, rounded once."""
    q, k, v, mask, grad_out = (t.bfloat16() for t in _operands(3, 2, 40, 3))
    assert kernel_applies(q, k, v, mask)
    out, lse = biased_attention(q, k, v, mask, 0.2, return_lse=True)
    grads = biased_attention_backward(q, k, v, mask, out, lse, grad_out, 0.2)
    fp32 = [t.float() for t in (q, k, v, mask, grad_out)]
    out32, lse32 = biased_attention(*fp32[:4], 0.2, return_lse=True)
    grads32 = biased_attention_backward(*fp32[:4], out.float(), lse32, fp32[4], 0.2)
    assert out.dtype == torch.bfloat16 and torch.equal(out, out32.bfloat16())
    assert torch.equal(lse, lse32)
    for got, want in zip(grads, grads32):
        assert got.dtype == torch.bfloat16 and torch.equal(got, want.bfloat16())


@requires_kernel
def test_masked_keys_get_no_weight():
    """Keys masked with -1e4 contribute nothing: the first 25 tokens' outputs
    equal the attention among those 25 alone."""
    q, k, v, mask, _ = _operands(2, 3, 40, 1)
    mask[..., 25:] = -1e4
    out, _ = biased_attention(q, k, v, mask, 0.2)
    kept, _ = biased_attention(q[..., :25, :].contiguous(), k[..., :25, :].contiguous(),
                               v[..., :25, :].contiguous(), mask[..., :25, :25].contiguous(), 0.2)
    torch.testing.assert_close(out[..., :25, :], kept, atol=1e-6, rtol=1e-6)


def test_applies_only_where_it_can(monkeypatch):
    q, k, v, mask, _ = _operands(2, 2, 20, 1)
    assert kernel_applies(q, k, v, mask) == cpu_supported()
    assert not kernel_applies(q.double(), k.double(), v.double(), mask.double())
    assert not kernel_applies(q.bfloat16(), k, v, mask)  # mixed q, k, v dtypes
    assert not kernel_applies(q[..., :16], k[..., :16], v[..., :16], mask)  # head_dims 16
    assert not kernel_applies(q, k, v, mask[:, :1])  # not a (P, heads, N, N) mask
    assert not kernel_applies(q, k.contiguous(), v, mask)  # strides differ
    with torch.enable_grad():
        assert not kernel_applies(q, k, v, mask.clone().requires_grad_())  # no autograd
    with torch.no_grad():
        assert kernel_applies(q, k, v, mask.clone().requires_grad_()) == cpu_supported()
    monkeypatch.setenv(ENABLE_ENV, '0')
    assert not kernel_available() and not kernel_applies(q, k, v, mask)


def test_missing_compiler_falls_back_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv('CXX', str(tmp_path / 'no-such-c++'))
    monkeypatch.setenv(cpu_attention.CACHE_ENV, str(tmp_path / 'cache'))
    kernel = cpu_attention._Kernel()
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        assert kernel.library() is None
        assert kernel.library() is None  # decided once
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records if 'kernel unavailable' in r.getMessage()]
    assert len(messages) == 1 and 'no C++ compiler found' in messages[0]
    assert 'install g++ or set CXX' in messages[0]


@requires_kernel
def test_builds_into_a_private_cache_and_refuses_writable_files(monkeypatch, tmp_path):
    folder = tmp_path / 'cache'
    monkeypatch.setenv(cpu_attention.CACHE_ENV, str(folder))
    path = cpu_attention.build_library()
    assert os.path.dirname(path) == str(folder) and os.path.isfile(path)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert os.listdir(folder) == [os.path.basename(path)]  # no temporary file left
    assert cpu_attention.build_library() == path  # cached
    os.chmod(path, 0o777)  # anyone could replace it: not loaded
    with pytest.raises(KernelBuildError, match='group/world-writable'):
        cpu_attention.build_library()


@requires_kernel
def test_unwritable_cache_builds_for_the_process_only(monkeypatch, tmp_path):
    blocked = tmp_path / 'file'
    blocked.write_text('')  # a file where the cache folder should be: not creatable
    monkeypatch.setenv(cpu_attention.CACHE_ENV, str(blocked / 'cache'))
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(temporary))
    kernel = cpu_attention._Kernel()
    assert kernel.library() is not None
    q, k, v, mask, _ = _operands(2, 2, 20, 1)
    out = torch.empty(2, 20, 2, 32)
    args = (*cpu_attention._qkv_mask_args(q, k, v, mask), out.data_ptr(), out.stride(0),
            out.stride(2), out.stride(1), None, 2, 20, 0.25)
    kernel.run(kernel.library().cfmm_biased_attention_fwd, args, 0, 4)
    torch.testing.assert_close(out.transpose(1, 2), biased_attention(q, k, v, mask, 0.25)[0])
    assert os.listdir(temporary) == []  # the temporary build folder is gone
