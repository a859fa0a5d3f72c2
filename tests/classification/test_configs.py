"""The ImageNet-1K configs: published parameter counts and FLOPs at 224, the
published recipe (optimizer, no decay on 1-D parameters and biases, linear
lr scaling, warm-up + cosine values, augmentations, evaluation transform) and
the per-variant backbone settings."""

import os
import types
from functools import lru_cache

import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner

from classification.cls_helpers import CONFIG_DIR, build_classifier, load_config
from crossformer_mm.models.backbones import ARCH_SETTINGS

# name: (arch, drop path, published params M, FLOPs G, top-1)
PUBLISHED = {
    'crossformer-t_8xb128_in1k.py': ('tiny', 0.1, 27.8, 2.9, 81.5),
    'crossformer-s_8xb128_in1k.py': ('small', 0.2, 30.7, 4.9, 82.5),
    'crossformer-b_8xb128_in1k.py': ('base', 0.3, 52.0, 9.2, 83.4),
    'crossformer-l_8xb128_in1k.py': ('large', 0.5, 92.0, 16.1, 84.0),
    'crossformerpp-s_8xb128_in1k.py': ('pp-small', 0.2, 23.3, 4.4, 83.2),
    'crossformerpp-b_8xb128_in1k.py': ('pp-base', 0.3, 52.0, 9.5, 84.2),
    'crossformerpp-l_8xb128_in1k.py': ('pp-large', 0.5, 92.0, 16.6, 84.7),
    'crossformerpp-h_8xb128_in1k.py': ('pp-huge', 0.5, 96.0, 21.8, 84.9),
}
S_CONFIG = 'crossformer-s_8xb128_in1k.py'


@lru_cache(maxsize=1)  # one big model at a time
def classifier(name: str) -> torch.nn.Module:
    cfg = load_config(name).model
    cfg.backbone.use_fused_attn = False  # the explicit attention matmuls are counted
    return build_classifier(cfg).eval()


def test_every_classification_config_is_listed():
    assert {n for n in os.listdir(CONFIG_DIR) if n.endswith('_in1k.py')} == set(PUBLISHED)


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_variant_picks_the_backbone_only(name):
    """arch, drop path and the head width; G / I / LDA mode / ACL stay the
    arch's classification setting (ARCH_SETTINGS)."""
    arch, drop_path, *_ = PUBLISHED[name]
    cfg = load_config(name)
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.drop_path_rate, backbone.out_indices) == (arch, drop_path, (3,))
    assert not {'group_size', 'crs_interval', 'lda_mode', 'use_acl'} & set(backbone)
    assert cfg.model.head.in_channels == 8 * ARCH_SETTINGS[arch]['embed_dims']
    assert cfg.model.head.num_classes == 1000
    assert cfg.custom_imports.imports == ['crossformer_mm.classification']
    reference = load_config(S_CONFIG)
    for key in (
        'optim_wrapper',
        'param_scheduler',
        'train_dataloader',
        'val_dataloader',
        'auto_scale_lr',
        'train_cfg',
    ):
        assert cfg[key] == reference[key], key


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_parameter_count_matches_published(name):
    arch, _, params, _, _ = PUBLISHED[name]
    model = classifier(name)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 1) == params, f'{name}: {millions:.4f}M, published {params}M'
    assert model.backbone.arch_settings == dict(ARCH_SETTINGS[arch])


def padded_lda_flops(by_module: dict, depths) -> float:
    """FLOPs that the windowed LDA of CrossFormer++ spends on padding tokens
    at 224 (stage maps 56 / 28 padded to multiples of G x I = 16 / 8): an LDA
    block's attention minus the unpadded SDA block's of the same stage."""
    extra = 0.0
    for i, depth in enumerate(depths):
        sda = by_module[f'backbone.layers.{i}.blocks.0.attn']
        extra += sum(
            by_module[f'backbone.layers.{i}.blocks.{j}.attn'] - sda for j in range(1, depth, 2)
        )
    return extra


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_flops_at_224_match_published(name):
    """mmengine's FlopAnalyzer (one multiply-add = 1 FLOP) on the classifier
    at 224. CrossFormer: equal to the published number at its precision.
    CrossFormer++: the windowed LDA computes on maps padded to multiples of
    G x I, which the original's analytic ``flops()`` (the published numbers)
    does not count; without the padding tokens the count is within 1% of the
    published one, with them within 2%."""
    arch, _, _, published, _ = PUBLISHED[name]
    analyzer = FlopAnalyzer(classifier(name), (torch.zeros(1, 3, 224, 224),))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    flops = analyzer.total() / 1e9
    padding = padded_lda_flops(analyzer.by_module(), ARCH_SETTINGS[arch]['depths']) / 1e9
    if ARCH_SETTINGS[arch]['lda_mode'] == 'iclr':
        assert padding == 0
        assert round(flops, 1) == published, f'{name}: {flops:.3f}G, published {published}G'
    else:
        assert 0 < padding < 0.02 * published
        assert abs(flops - padding - published) < 0.01 * published, (name, flops, padding)
        assert abs(flops - published) < 0.02 * published, (name, flops)


def test_optimizer_adamw_without_decay_on_norms_and_biases():
    cfg = load_config(S_CONFIG)
    model = build_classifier(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    optimizer = wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    assert (optimizer.defaults['betas'], optimizer.defaults['eps']) == ((0.9, 0.999), 1e-8)
    assert wrapper.clip_grad_kwargs == dict(max_norm=5.0)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = no_decay = 0
    for group in optimizer.param_groups:
        for param in group['params']:
            one_d = param.ndim == 1 or names[id(param)].endswith('.bias')
            assert group['weight_decay'] == (0.0 if one_d else 0.05), names[id(param)]
            decayed += not one_d
            no_decay += one_d
    assert decayed and no_decay and decayed + no_decay == len(names)


def scaled_lr(cfg, gpus: int, batch: int) -> float:
    """The lr after mmengine's Runner.scale_lr for ``gpus`` x ``batch``."""
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    runner = types.SimpleNamespace(
        _train_dataloader=dict(batch_size=batch),
        world_size=gpus,
        param_schedulers=None,
        logger=types.SimpleNamespace(info=lambda *args: None),
    )
    Runner.scale_lr(runner, wrapper, cfg.auto_scale_lr)
    return wrapper.optimizer.param_groups[0]['lr']


def test_linear_lr_scaling_as_the_original():
    """lr = 5e-4 x total batch / 512, always (the original scales in main.py):
    1e-3 at 8 x 128, 5e-4 at 4 x 128, 1.25e-4 at 1 x 128."""
    cfg = load_config(S_CONFIG)
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.auto_scale_lr == dict(base_batch_size=512, enable=True)
    for gpus, expected in ((8, 1e-3), (4, 5e-4), (1, 1.25e-4)):
        assert scaled_lr(cfg, gpus, 128) == pytest.approx(expected)


def test_schedule_warmup_and_cosine_values():
    """Per iteration: 20 warm-up epochs from 5e-7 x 2 to the lr (1e-3 at
    8 x 128), then cosine to 5e-6 x 2 at epoch 300."""
    cfg = load_config(S_CONFIG)
    epoch_length = 4
    optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict(s), default_args=dict(optimizer=optimizer, epoch_length=epoch_length)
        )
        for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs * epoch_length):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    warmup = 20 * epoch_length
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[warmup] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:warmup], lrs[1 : warmup + 1]))
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :]))
    assert lrs[-1] == pytest.approx(1e-5, rel=1e-3)
    assert lrs[warmup + (len(lrs) - warmup) // 2] == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-2)


def test_augmentations_loss_and_evaluation_transform():
    cfg = load_config(S_CONFIG)
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert (
        train['RandomResizedCrop']['scale'],
        train['RandomResizedCrop']['interpolation'],
        train['RandomResizedCrop']['backend'],
    ) == (224, 'bicubic', 'pillow')
    assert train['RandomFlip']['prob'] == 0.5
    rand_aug = train['RandAugment']  # rand-m9-mstd0.5-inc1
    assert (
        rand_aug['policies'],
        rand_aug['num_policies'],
        rand_aug['magnitude_level'],
        rand_aug['magnitude_std'],
        rand_aug['total_level'],
    ) == ('timm_increasing', 2, 9, 0.5, 10)
    assert (train['RandomErasing']['erase_prob'], train['RandomErasing']['mode']) == (0.25, 'rand')
    assert 'ColorJitter' not in train  # timm drops colour jitter with RandAugment
    assert [(a['type'], a['alpha']) for a in cfg.model.train_cfg.augments] == [
        ('Mixup', 0.8),
        ('CutMix', 1.0),
    ]
    assert (cfg.model.head.loss.type, cfg.model.head.loss.label_smooth_val) == (
        'LabelSmoothLoss',
        0.1,
    )
    test = [
        {k: v for k, v in t.items() if k != '_scope_'} for t in cfg.test_dataloader.dataset.pipeline
    ]
    assert test[1] == dict(
        type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'
    )
    assert test[2] == dict(type='CenterCrop', crop_size=224)
    assert (cfg.data_preprocessor.mean, cfg.data_preprocessor.std) == (
        [123.675, 116.28, 103.53],
        [58.395, 57.12, 57.375],
    )
    assert cfg.data_preprocessor.to_rgb
    assert cfg.train_cfg.max_epochs == 300
