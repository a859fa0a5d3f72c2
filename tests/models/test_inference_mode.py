"""A forward under torch.inference_mode() never breaks a later training step.

The module-level caches (DPB offset tables, padding masks) and the folded-mask
cache of LSDA must never hand an inference tensor to a grad-mode computation.
"""
import copy

import pytest
import torch

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers.dpb import offset_tables
from crossformer_mm.models.layers.lsda import cached_key_padding_mask

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
    model = CrossFormer(arch=TINY, lda_mode=lda_mode, drop_path_rate=0.,
                        use_fused_attn=use_fused_attn)
    model.init_weights()
    fresh = copy.deepcopy(model)
    # 70x90: padded SDA and LDA layouts in stages 1-2, the small-map rule in stages 3-4
    x = torch.randn(1, 3, 70, 90)
    # the inference-mode forward is the first to fill every cache
    offset_tables.cache_clear()
    cached_key_padding_mask.cache_clear()
    model.eval()
    with torch.inference_mode():
        inferred = model(x)
    assert offset_tables.cache_info().currsize > 0 or not use_fused_attn
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


def test_cached_tables_and_masks_are_normal_tensors():
    offset_tables.cache_clear()
    cached_key_padding_mask.cache_clear()
    torch.manual_seed(0)
    model = CrossFormer(arch=TINY, lda_mode='windowed', drop_path_rate=0.).eval()
    with torch.inference_mode():
        model(torch.randn(1, 3, 70, 90))
        # stage 1 is 17x22: padded 7x7 SDA groups and windowed LDA groups
        layouts = [block.attn.layout(17, 22) for block in model.layers[0].blocks]
        hits = offset_tables.cache_info().hits, cached_key_padding_mask.cache_info().hits
        tables = [offset_tables(lo.group_h, lo.group_w, torch.device('cpu')) for lo in layouts]
        masks = [cached_key_padding_mask(lo, torch.device('cpu')) for lo in layouts]
        assert offset_tables.cache_info().hits == hits[0] + len(layouts)  # filled above
        assert cached_key_padding_mask.cache_info().hits == hits[1] + len(layouts)
        folded = [m for stage in model.layers for block in stage.blocks
                  for _, m in block.attn._mask_cache.values()]
    assert all(m is not None for m in masks)
    for t in [t for pair in tables for t in pair] + masks:
        assert not t.is_inference() and not t.requires_grad
    # the folded masks made under inference mode are inference tensors, kept under
    # their own cache key: a grad-mode call never sees them
    assert folded and all(m.is_inference() for m in folded)
