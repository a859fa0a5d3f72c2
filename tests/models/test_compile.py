"""``torch.compile(backbone)``: one graph, no recompiles, eager's numbers.

Under dynamo the fused path is SDPA and ``F.linear`` (the oneDNN linear is
eager-only, :mod:`crossformer_mm.models.layers.linear`); these tests pin that
the traced function is the eager function, and that inductor compiles it.
"""

import copy

import pytest
import torch
import torch._dynamo as dynamo
from torch._dynamo.testing import CompileCounterWithBackend

from crossformer_mm.models.backbones import CrossFormer

ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
#: padded at every stage (19x25, 10x13, 5x7, 3x4 maps); the ICLR LDA groups of
#: stage 1 (3x4 tokens) and the stage-3/4 fallbacks are all exercised
SIZE = (76, 100)
GRAD_MODES = {
    'train': (True, torch.enable_grad),
    'no_grad': (False, torch.no_grad),
    'inference_mode': (False, torch.inference_mode),
}


def _backbone(lda_mode: str) -> CrossFormer:
    torch.manual_seed(0)
    model = CrossFormer(arch=ARCH, lda_mode=lda_mode, drop_path_rate=0.0)
    for module in model.modules():  # non-trivial DPB weights
        if hasattr(module, 'pos'):
            for p in module.pos.parameters():
                p.data.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(autouse=True)
def fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
@pytest.mark.parametrize('grad_mode', sorted(GRAD_MODES))
def test_no_graph_breaks(lda_mode, grad_mode):
    model = _backbone(lda_mode)
    train, context = GRAD_MODES[grad_mode]
    model.train(train)
    with context():
        explanation = dynamo.explain(model)(torch.randn(1, 3, *SIZE))
    reasons = [str(r.reason).splitlines()[0] for r in explanation.break_reasons]
    assert explanation.graph_break_count == 0, reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
def test_compiled_equals_eager_and_compiles_once(lda_mode):
    """Outputs in every grad mode and training gradients (DPB included) equal
    eager's; at a fixed size the graph of each mode is compiled once."""
    eager = _backbone(lda_mode)
    model = copy.deepcopy(eager)
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(model, backend=counter)
    x = torch.randn(2, 3, *SIZE)

    for name in ('no_grad', 'inference_mode', 'train'):
        train, context = GRAD_MODES[name]
        eager.train(train), model.train(train)
        frames_before = counter.frame_count
        for _ in range(2):
            eager.zero_grad(set_to_none=True), model.zero_grad(set_to_none=True)
            with context():
                outs_e, outs_c = eager(x), compiled(x)
            for out_e, out_c in zip(outs_e, outs_c, strict=True):
                torch.testing.assert_close(out_c, out_e, atol=1e-5, rtol=1e-5, msg=name)
        assert counter.frame_count - frames_before <= 1, f'{name}: recompiled at a fixed size'
        if train:
            sum((o * (i + 1)).mean() for i, o in enumerate(outs_e)).backward()
            sum((o * (i + 1)).mean() for i, o in enumerate(outs_c)).backward()
            grads_c = dict(model.named_parameters())
            for key, param in eager.named_parameters():
                scale = max(1.0, param.grad.abs().max().item())
                torch.testing.assert_close(
                    grads_c[key].grad, param.grad, atol=1e-5 * scale, rtol=1e-5, msg=key
                )
    assert counter.frame_count == 3  # one graph per grad mode, nothing else


@pytest.mark.slow
@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
def test_inductor_compiles_in_inference_mode(lda_mode):
    """The default backend (inductor, CPU C++ code generation) compiles and
    runs the backbone under ``torch.inference_mode()`` at a fixed size."""
    model = _backbone(lda_mode).eval()
    compiled = torch.compile(model, dynamic=False)
    x = torch.randn(1, 3, *SIZE)
    with torch.inference_mode():
        outs_e, outs_c = model(x), compiled(x)
    for out_e, out_c in zip(outs_e, outs_c, strict=True):
        torch.testing.assert_close(out_c, out_e, atol=1e-4, rtol=1e-4)
