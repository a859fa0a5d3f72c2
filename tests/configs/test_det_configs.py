"""Detection configs: recipes, published parameter counts, and 2 training
iterations of every config with mmdet's own (installed) ``tools/train.py``."""

import glob
import os.path as osp
import runpy
import sys

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from _helpers import REPO_ROOT, make_toy_set, model_family, one_per_family
from crossformer_mm.testing.toy_configs import TOY_CLASSES, det_smoke_options

DET_CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO_ROOT, 'configs', '*.py'))
    if osp.basename(p).startswith(('mask_rcnn_', 'retinanet_', 'cascade_'))
)

# Published parameter counts (M): CrossFormer paper / README tables.
PUBLISHED_PARAMS = {
    'mask_rcnn_crossformer_s_fpn_1x_coco.py': 50.2,
    'mask_rcnn_crossformer_b_fpn_1x_coco.py': 71.5,
    'mask_rcnn_crossformer_s_fpn_ms-3x_coco.py': 50.2,
    'mask_rcnn_crossformer_b_fpn_ms-3x_coco.py': 71.5,
    'retinanet_crossformer_s_fpn_1x_coco.py': 40.8,
    'retinanet_crossformer_b_fpn_1x_coco.py': 62.1,
    'cascade_mask_rcnn_crossformer_s_fpn_ms-3x_coco.py': 88.0,
    'mask_rcnn_crossformerpp_s_fpn_1x_coco.py': 43.0,
    'mask_rcnn_crossformerpp_b_fpn_1x_coco.py': 71.5,
    'retinanet_crossformerpp_b_fpn_1x_coco.py': 62.2,
}
MMDET_TRAIN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', name))


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_set(str(tmp_path_factory.mktemp('toy_coco')))


def test_all_eleven_detection_configs_exist():
    assert len(DET_CONFIGS) == 11, DET_CONFIGS


@pytest.mark.parametrize('name', DET_CONFIGS)
def test_recipe(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['crossformer_mm'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    backbone = cfg.model.backbone
    assert backbone.type == 'CrossFormer'
    assert backbone.group_size == [7, 7, 7, 7]
    assert backbone.crs_interval == [8, 4, 2, 1]
    assert backbone.init_cfg.type == 'Pretrained'
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1e-4, 1e-4)
    assert 'clip_grad' not in cfg.optim_wrapper
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end, warmup.by_epoch) == (
        'LinearLR',
        0.001,
        500,
        False,
    )
    three_x = 'ms-3x' in name
    assert cfg.train_cfg.max_epochs == (36 if three_x else 12)
    assert steps.milestones == ([27, 33] if three_x else [8, 11])
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_dataloader.batch_size == 2
    pipeline_types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert ('RandomChoice' in pipeline_types) == three_x
    if name.startswith('retinanet'):
        assert cfg.model.neck.start_level == 1
        assert cfg.model.neck.add_extra_convs == 'on_input'
    expected_arch = ('pp-' if 'crossformerpp' in name else '') + (
        'base' if '_b_' in name else 'small'
    )
    assert backbone.arch == expected_arch
    assert backbone.drop_path_rate == (0.3 if '_b_' in name else 0.2)


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_published(name):
    cfg = load(name)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - PUBLISHED_PARAMS[name]) <= 0.05, params


@pytest.mark.slow
@pytest.mark.parametrize('name', one_per_family(DET_CONFIGS, model_family))
def test_stock_mmdet_train_two_iterations(name, toy_root, tmp_path, monkeypatch):
    config = osp.join(REPO_ROOT, 'configs', name)
    options = det_smoke_options(load(name), toy_root)
    monkeypatch.setattr(
        sys, 'argv', [MMDET_TRAIN, config, '--work-dir', str(tmp_path), '--cfg-options', *options]
    )
    runpy.run_path(MMDET_TRAIN, run_name='__main__')
    with open(tmp_path / 'last_checkpoint') as f:
        checkpoint = torch.load(f.read().strip(), weights_only=False)
    assert checkpoint['meta']['iter'] == 2
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == TOY_CLASSES


@pytest.mark.slow
def test_tools_test_py_with_flip_tta(toy_root, tmp_path, monkeypatch):
    """tools/test.py --tta --eval bbox on RetinaNet (untrained weights)."""
    name = 'retinanet_crossformer_s_fpn_1x_coco.py'
    cfg = load(name)
    options = det_smoke_options(cfg, toy_root)
    cfg.model.bbox_head.num_classes = len(TOY_CLASSES)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    checkpoint = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, checkpoint)
    script = osp.join(REPO_ROOT, 'tools', 'test.py')
    monkeypatch.setattr(
        sys,
        'argv',
        [
            script,
            osp.join(REPO_ROOT, 'configs', name),
            checkpoint,
            '--tta',
            '--eval',
            'bbox',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *options,
        ],
    )
    runpy.run_path(script, run_name='__main__')
    metrics = glob.glob(str(tmp_path / '*' / '*.json'))
    assert len(metrics) == 1
