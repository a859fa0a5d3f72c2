"""A forward under torch.inference_mode() never breaks a later training step.

Derived tables are module state made at construction (normal tensors): an
inference-mode forward leaves nothing behind that a grad-mode computation sees.
"""

import copy

import pytest
import torch

from crossformer_mm.models.backbones import CrossFormer

TINY = dict(embed_dims=32, depths=(2, 2, 1, 1), num_heads=(1, 2, 4, 8))


def _train_grads(model, x):
    model.train()
    model.zero_grad(set_to_none=True)
    inp = x.clone().requires_grad_()
    outs = model(inp)
    generator = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=generator)).sum() for o in outs)
    loss.backward()
    return [o.detach() for o in outs], inp.grad, {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize('use_fused_attn', [True, False])
@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
def test_inference_mode_then_training(lda_mode, use_fused_attn):
    torch.manual_seed(0)
    model = CrossFormer(
        arch=TINY, lda_mode=lda_mode, drop_path_rate=0.0, use_fused_attn=use_fused_attn
    )
    model.init_weights()
    fresh = copy.deepcopy(model)
    # 70x90: padded SDA and LDA layouts in stages 1-2, the small-map rule in stages 3-4
    x = torch.randn(1, 3, 70, 90)
    model.eval()
    with torch.inference_mode():
        inferred = model(x)
    assert not any(b.is_inference() for b in model.buffers())
    outs, grad_x, grads = _train_grads(model, x)  # raised "Inference tensors cannot be saved"
    ref_outs, ref_grad_x, ref_grads = _train_grads(fresh, x)
    for a, b in zip(outs + [grad_x], ref_outs + [ref_grad_x]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert grads[name] is not None, name
        torch.testing.assert_close(grads[name], ref_grads[name], atol=0, rtol=0, msg=name)
    for a, b in zip(inferred, outs):  # same function in both modes
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # and back: inference after training, then training again
    model.eval()
    with torch.inference_mode():
        model(x)
    again = _train_grads(model, x)[2]
    for name in grads:
        torch.testing.assert_close(again[name], ref_grads[name], atol=0, rtol=0, msg=name)
