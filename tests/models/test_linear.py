"""The oneDNN linear layers (models/layers/linear.py) against F.linear."""

import pytest
import torch
import torch.nn.functional as F

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers import LSDA, Linear
from crossformer_mm.models.layers.linear import OneDNNLinearFunction, linear


def _reference(x, layer, activation):
    out = F.linear(x, layer.weight, layer.bias)
    return F.gelu(out) if activation == 'gelu' else out


def _grads(fn, x, layer):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    params = [x] + list(layer.parameters())
    return (out.detach(), *torch.autograd.grad(out, params, grad))


@pytest.mark.parametrize('activation', [None, 'gelu'])
@pytest.mark.parametrize('bias', [True, False])
def test_outputs_and_gradients_match_f_linear(activation, bias, monkeypatch):
    torch.manual_seed(0)
    layer = Linear(96, 384, bias=bias)
    x = torch.randn(2, 25, 38, 96)  # token-major (B, H, W, C), as in the blocks
    calls = []
    real_apply = OneDNNLinearFunction.apply
    monkeypatch.setattr(
        OneDNNLinearFunction, 'apply', lambda *args: calls.append(1) or real_apply(*args)
    )
    fast = _grads(lambda t: layer(t, activation), x, layer)
    assert calls, 'the training call did not run the oneDNN function'
    ref = _grads(lambda t: _reference(t, layer, activation), x, layer)
    for a, b in zip(fast, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the activation fused into the kernel
        torch.testing.assert_close(layer(x, activation), ref[0], rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x, activation), ref[0], rtol=1e-5, atol=1e-5)


def test_non_contiguous_input():
    torch.manual_seed(0)
    layer = Linear(64, 32)
    x = torch.randn(64, 300).t()  # (300, 64), strides (1, 300)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_bf16_weights_and_autocast():
    torch.manual_seed(0)
    layer = Linear(64, 256)
    x = torch.randn(4, 10, 64)
    ref = F.gelu(F.linear(x, layer.weight, layer.bias))
    with torch.no_grad():
        out = layer.to(torch.bfloat16)(x.bfloat16(), 'gelu')
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    layer.float()
    x.requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x, 'gelu')
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad.dtype == layer.weight.grad.dtype == torch.float32
    assert torch.isfinite(layer.weight.grad).all()


def test_reference_path_and_tracing_use_f_linear(monkeypatch):
    """use_onednn=False, JIT tracing (mmengine's FLOP counter) and dynamo must
    see a standard aten linear."""
    layer = Linear(8, 8)
    x = torch.randn(3, 8)

    def fail(*args, **kwargs):
        raise AssertionError('oneDNN kernel called')

    monkeypatch.setattr('crossformer_mm.models.layers.linear._onednn_linear', fail)
    layer.use_onednn = False
    layer(x, 'gelu')
    layer.use_onednn = True
    graph = torch.jit.trace(layer, x, check_trace=False).graph
    assert 'aten::linear' in str(graph)


def test_wrong_dtype_and_activation_are_reported():
    layer = Linear(8, 8)
    with pytest.raises(RuntimeError, match='dtype'):
        layer(torch.randn(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match='activation must be one of'):
        linear(torch.randn(2, 8), layer.weight, activation='relu')


def test_use_fused_attn_switches_the_linears():
    attn = LSDA(64, 2, 7, 1)
    assert attn.qkv.use_onednn and attn.proj.use_onednn
    attn.use_fused_attn = False
    assert not (attn.qkv.use_onednn or attn.proj.use_onednn)
    model = CrossFormer(arch='tiny', use_fused_attn=False)
    assert not any(m.use_onednn for m in model.modules() if isinstance(m, Linear))
    assert set(CrossFormer(arch='tiny').state_dict()) == set(model.state_dict())


def test_second_derivative_is_refused_not_wrong():
    layer = Linear(8, 8)
    x = torch.randn(3, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='once_differentiable'):
        grad.sum().backward()


def test_onednn_op_is_checked_once_per_dtype():
    """The private op is used only after it agreed with F.linear in this process."""
    from crossformer_mm.models.layers.linear import onednn_linear_works

    assert onednn_linear_works(torch.float32)  # oneDNN ships with every x86 torch build
    info = onednn_linear_works.cache_info()
    onednn_linear_works(torch.float32)
    assert onednn_linear_works.cache_info().hits == info.hits + 1


def test_missing_or_different_op_falls_back_to_f_linear(monkeypatch):
    """Where the op raises or disagrees with F.linear, F.linear runs (and the
    outcome is logged once)."""
    from crossformer_mm.models.layers import linear as linear_module

    layer = Linear(8, 8)
    x = torch.randn(3, 8)
    expected = F.linear(x, layer.weight, layer.bias)
    for broken in (
        lambda *args: (_ for _ in ()).throw(RuntimeError('no such op')),
        lambda x, weight, bias, activation=None: F.linear(x, weight, bias) + 1,
    ):
        linear_module.onednn_linear_works.cache_clear()
        monkeypatch.setattr(linear_module, '_onednn_linear', broken)
        assert not linear_module.onednn_linear_works(torch.float32)
        with torch.no_grad():
            torch.testing.assert_close(layer(x), expected)
    monkeypatch.undo()
    linear_module.onednn_linear_works.cache_clear()


def test_compiled_and_exported_code_sees_f_linear():
    """torch.compile / torch.export trace aten.linear (inductor lowers it), not
    the private op, in training and inference alike."""
    layer = Linear(8, 8)
    x = torch.randn(3, 8)
    for context in (torch.enable_grad, torch.inference_mode):
        with context():
            program = torch.export.export(layer, (x,))
        targets = {str(node.target) for node in program.graph.nodes}
        assert not [t for t in targets if 'mkldnn' in t], targets
        assert 'aten.linear.default' in targets
