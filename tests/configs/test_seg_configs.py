"""Semantic segmentation configs: published parameter counts, the published
optimisation recipes, and whole-image inference at any aspect ratio."""

import os
import os.path as osp
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from _helpers import REPO_ROOT

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')

# Published parameter counts (M), CrossFormer / CrossFormer++ papers and the
# original repository: every parameter of the segmentor, auxiliary head
# included (what mmcv's get_model_complexity_info counted in the original
# get_flops.py, which printed them with two decimals, e.g. "83.65 M", then
# rounded half up to one decimal for the tables: 83.645222M -> 83.7M).
PUBLISHED_PARAMS = {
    'upernet_crossformer_s_512x512_160k_ade20k.py': 62.3,
    'upernet_crossformer_b_512x512_160k_ade20k.py': 83.6,
    'upernet_crossformer_l_512x512_160k_ade20k.py': 125.5,
    'upernet_crossformerpp_s_512x512_160k_ade20k.py': 53.1,
    'upernet_crossformerpp_b_512x512_160k_ade20k.py': 83.7,
    'fpn_crossformer_s_512x512_80k_ade20k.py': 34.3,
    'fpn_crossformer_b_512x512_80k_ade20k.py': 55.6,
    'fpn_crossformer_l_512x512_80k_ade20k.py': 95.4,
    'fpn_crossformerpp_s_512x512_80k_ade20k.py': 27.1,
    'fpn_crossformerpp_b_512x512_80k_ade20k.py': 55.6,
}
UPERNET_S = 'upernet_crossformer_s_512x512_160k_ade20k.py'
FPN_S = 'fpn_crossformer_s_512x512_80k_ade20k.py'


@cache
def load_config(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def build_segmentor(name: str) -> torch.nn.Module:
    init_default_scope('mmseg')
    return MODELS.build(load_config(name).model)


def test_every_segmentation_config_is_listed():
    on_disk = {n for n in os.listdir(CONFIG_DIR) if n.endswith('_ade20k.py')}
    assert on_disk == set(PUBLISHED_PARAMS)


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_published(name):
    model = build_segmentor(name)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    printed = Decimal(str(round(millions, 2)))  # mmcv's params_to_string
    table = printed.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)
    assert table == Decimal(str(PUBLISHED_PARAMS[name])), (
        f'{name}: {millions:.6f}M parameters, published {PUBLISHED_PARAMS[name]}M'
    )


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_configs_keep_syncbn_and_no_segmentor_pretrained(name):
    model_cfg = load_config(name).model
    assert model_cfg.pretrained is None
    assert model_cfg.decode_head.norm_cfg.type == 'SyncBN'
    assert model_cfg.backbone.init_cfg.type == 'Pretrained'
    expected_g = (
        ([14, 14, 7, 7], [16, 8, 2, 1])
        if name in (FPN_S, 'fpn_crossformer_l_512x512_80k_ade20k.py')
        else ([7] * 4, [8, 4, 2, 1])
    )
    assert (model_cfg.backbone.group_size, model_cfg.backbone.crs_interval) == expected_g


def test_upernet_optimizer_has_no_decay_on_norm_params():
    cfg = load_config(UPERNET_S)
    model = build_segmentor(UPERNET_S)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert isinstance(optimizer, torch.optim.AdamW)
    decay_of = {
        id(p): group['weight_decay'] for group in optimizer.param_groups for p in group['params']
    }
    names = [n for n, _ in model.named_parameters()]
    assert any('backbone' in n and 'norm' in n for n in names)
    for name, param in model.named_parameters():
        expected = 0.0 if 'norm' in name else 0.01
        assert decay_of[id(param)] == expected, name
    group = optimizer.param_groups[0]
    assert (group['lr'], group['betas']) == (6e-5, (0.9, 0.999))


def mmcv_poly_lr(
    base_lr: float, max_iters: int, power: float, warmup_iters: int = 0, warmup_ratio: float = 1.0
) -> np.ndarray:
    """Learning rate of every iteration under mmcv 1.x's PolyLrUpdaterHook
    (min_lr 0) with a linear warm-up, as the original configs trained."""
    t = np.arange(max_iters, dtype=np.float64)
    lr = base_lr * (1 - t / max_iters) ** power
    if warmup_iters:
        warm = t < warmup_iters
        lr[warm] *= 1 - (1 - t[warm] / warmup_iters) * (1 - warmup_ratio)
    return lr


@pytest.mark.parametrize(
    'name, base_lr, max_iters, power, warmup',
    [
        (UPERNET_S, 6e-5, 160000, 1.0, (1500, 1e-6)),
        (FPN_S, 1e-4, 80000, 0.9, ()),
    ],
)
def test_lr_schedule_equals_original_mmcv_poly(name, base_lr, max_iters, power, warmup):
    cfg = load_config(name)
    assert cfg.train_cfg.max_iters == max_iters
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in cfg.param_scheduler]
    lrs = []
    for _ in range(max_iters):
        lrs.append(optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    expected = mmcv_poly_lr(base_lr, max_iters, power, *warmup)
    np.testing.assert_allclose(lrs, expected, rtol=1e-6, atol=1e-15)


@pytest.mark.parametrize('name', [UPERNET_S, FPN_S])
def test_whole_image_inference_at_own_aspect_ratio(name):
    """mode='whole' runs the backbone on the image as it is (72x100: not
    square, not a multiple of 32) and predicts every pixel."""
    model = revert_sync_batchnorm(build_segmentor(name)).eval()
    assert model.test_cfg.mode == 'whole'
    seen = []
    model.backbone.register_forward_hook(
        lambda module, inputs, outputs: seen.append(inputs[0].shape)
    )
    image = torch.randint(0, 256, (3, 72, 100), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(72, 100), ori_shape=(72, 100)))
    with torch.no_grad():
        result = model.test_step(dict(inputs=[image], data_samples=[sample]))[0]
    assert seen == [(1, 3, 72, 100)]
    assert result.seg_logits.data.shape == (150, 72, 100)
    assert result.pred_sem_seg.data.shape == (1, 72, 100)
