"""The CrossFormer backbone: archs, shapes, options and input checks."""

import pytest
import torch
import torch.nn as nn

from crossformer_mm.models.backbones import ARCH_SETTINGS, CrossFormer

# ImageNet-1K totals: backbone + final LayerNorm + Linear(8C, 1000)
PUBLISHED_PARAMS_M = {
    'tiny': 27.78,
    'small': 30.66,
    'base': 51.97,
    'large': 91.97,
    'pp-small': 23.33,
    'pp-base': 51.99,
    'pp-large': 92.00,
    'pp-huge': 95.96,
}


@pytest.mark.parametrize('arch', sorted(PUBLISHED_PARAMS_M))
def test_classification_parameter_count(arch):
    model = CrossFormer(arch=arch)
    width = model.num_features[-1]
    total = sum(p.numel() for p in model.parameters()) + 2 * width + width * 1000 + 1000
    assert round(total / 1e6, 2) == PUBLISHED_PARAMS_M[arch]


def test_arch_table_covers_published_variants():
    assert set(ARCH_SETTINGS) == set(PUBLISHED_PARAMS_M)


@pytest.mark.parametrize('size', [(32, 32), (67, 101), (100, 36)])
def test_output_shapes_any_size(size):
    model = CrossFormer(
        arch=dict(embed_dims=32, depths=(1, 2, 1, 1), num_heads=(1, 2, 4, 8)), drop_path_rate=0.0
    ).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    H, W = size[0] // 4, size[1] // 4
    for i, out in enumerate(outs):
        assert out.shape == (2, 32 * 2**i, H, W)
        H, W = H // 2, W // 2


def test_too_small_or_wrong_input_is_a_clear_error():
    model = CrossFormer(arch=dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)))
    with pytest.raises(ValueError, match='too small.*32x32'):
        model(torch.randn(1, 3, 31, 64))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        model(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize(
    'kwargs,message',
    [
        (dict(arch='medium'), "unknown CrossFormer arch 'medium'"),
        (dict(arch='small', group_size=[7, 7, 7]), 'group_size must be 4 positive integers'),
        (dict(arch='small', crs_interval=[8, 4, 0, 1]), 'crs_interval must be 4 positive'),
        (dict(arch='small', lda_mode='global'), 'lda_mode must be one of'),
        (dict(arch=dict(embed_dims=96, depths=(2, 2, 6, 2))), 'needs the keys'),
        (dict(arch=dict(embed_dims=96, depths=(2, 2), num_heads=(5, 6))), 'not divisible'),
        (
            dict(arch=dict(embed_dims=96, depths=(2, 2), num_heads=(3, 6), group_size=(7, 7, 7))),
            'group_size must be 2 positive',
        ),
        (dict(out_indices=(0, 4)), 'out_indices'),
        (dict(frozen_stages=5), 'frozen_stages'),
        (dict(init_cfg=dict(type='Kaiming')), 'init_cfg'),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossFormer(**kwargs)


def test_overrides_and_defaults():
    pp = CrossFormer(arch='pp-small')
    assert pp.arch_settings['lda_mode'] == 'windowed' and pp.arch_settings['use_acl']
    assert pp.arch_settings['group_size'] == (4, 4, 14, 7)
    det = CrossFormer(arch='pp-small', group_size=[7] * 4, crs_interval=[8, 4, 2, 1])
    assert det.arch_settings['group_size'] == (7, 7, 7, 7)
    assert det.arch_settings['crs_interval'] == (8, 4, 2, 1)
    acl_blocks = [
        f'{i}.{j}'
        for i, stage in enumerate(pp.layers)
        for j, block in enumerate(stage.blocks)
        if block.use_acl
    ]
    assert acl_blocks == ['2.2', '2.5', '2.8', '2.11', '2.14']
    small = CrossFormer(arch='small')
    assert small.arch_settings['lda_mode'] == 'iclr' and not small.arch_settings['use_acl']
    types = [b.attn.attn_type for b in small.layers[2].blocks]
    assert types == ['sda', 'lda'] * 3


def test_out_indices_and_out_norms():
    model = CrossFormer(
        arch=dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)),
        out_indices=(1, 3),
        norm_outputs=True,
    ).eval()
    assert {'norm1.weight', 'norm3.weight'} <= set(model.state_dict())
    assert 'norm0.weight' not in model.state_dict()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 256]
    # an output LayerNorm normalises every position over channels
    assert outs[0].mean(1).abs().max() < 1e-4


def test_frozen_stages_stay_frozen_in_train_mode():
    model = CrossFormer(
        arch=dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)), frozen_stages=1
    )
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert not model.layers[0].training and model.layers[1].training


def test_norm_eval_keeps_batchnorm_in_eval():
    model = CrossFormer(
        arch=dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)), norm_eval=True
    )
    model.add_module('extra_bn', nn.BatchNorm2d(4))
    model.train()
    assert not model.extra_bn.training and model.layers[0].training


def test_original_initialisation():
    torch.manual_seed(0)
    model = CrossFormer(arch='small')
    model.init_weights()
    qkv = model.layers[2].blocks[0].attn.qkv
    assert abs(qkv.weight.std().item() - 0.02) < 0.002
    assert abs(qkv.weight.mean().item()) < 0.002
    assert torch.all(qkv.bias == 0)
    assert torch.all(model.layers[0].blocks[0].norm1.weight == 1)


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    arch = dict(embed_dims=32, depths=(2, 2, 1, 1), num_heads=(1, 2, 4, 8))
    plain = CrossFormer(arch=arch, drop_path_rate=0.0)
    ckpt = CrossFormer(arch=arch, drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 40, 48)
    grads = []
    for model in (plain, ckpt):
        model.train()
        inp = x.clone().requires_grad_()
        loss = sum((o**2).mean() for o in model(inp))
        loss.backward()
        grads.append([inp.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_custom_two_stage_arch():
    model = CrossFormer(
        arch=dict(embed_dims=32, depths=(1, 2), num_heads=(1, 2)), out_indices=(0, 1)
    ).eval()
    assert model.arch_settings['crs_interval'] == (2, 1)
    assert model.min_input_size == 8
    outs = model(torch.randn(1, 3, 20, 24))
    assert [o.shape for o in outs] == [(1, 32, 5, 6), (1, 64, 2, 3)]
