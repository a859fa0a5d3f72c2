"""Semantic segmentation with the stock tools on a toy ADE20K set (CPU).

mmseg's own ``tools/train.py`` (from its installed ``.mim/tools``) trains
every segmentation config for 2 iterations, unedited apart from
``--cfg-options`` that point it at the toy data and shrink the crops (one of
them through ``mim train mmseg``); this project's and mmseg's
``tools/test.py`` score that run's checkpoint, single-scale and with
``--tta``.
"""

import math
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

import cv2
import mmseg
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.datasets import ADE20KDataset

from _helpers import MIM_PACKAGE, REPO_ROOT, model_family, one_per_family
from _helpers import run as run_command
from crossformer_mm.testing.toy_ade import CLASS_COLOURS, make_toy_ade
from crossformer_mm.testing.toy_configs import cli_options, seg_toy_overrides

pytestmark = pytest.mark.slow  # stock tools in subprocesses

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
SEG_CONFIGS = sorted(n for n in os.listdir(CONFIG_DIR) if n.endswith('_ade20k.py'))
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
CKPT_CONFIG = 'fpn_crossformerpp_s_512x512_80k_ade20k.py'  # the smallest
TOY_SIZE = (64, 96)  # H, W: not square; 0.5x TTA still gives >= 32 pixels
CROP = (64, 64)
# one thread: 2-iteration runs are dominated by small ops, which extra threads
# only slow down when the cores are shared
ENV = {'MKL_NUM_THREADS': '1'}


@pytest.fixture(scope='module')
def toy_ade(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toy_ade'))
    make_toy_ade(root, num_train=2, num_val=1, height=TOY_SIZE[0], width=TOY_SIZE[1])
    return root


def toy_cli_options(config: str, data_root: str, **extra) -> List[str]:
    """``--cfg-options`` running ``config`` on the toy set for 2 iterations."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    # batch 2: BatchNorm after UPerNet's 1x1 pooling needs two values
    options: Dict = seg_toy_overrides(cfg, data_root, min(TOY_SIZE), CROP, batch_size=2)
    options.update(
        {
            'model.backbone.init_cfg': None,  # no ImageNet checkpoint here
            'train_cfg.max_iters': 2,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.save_last': False,
        }
    )
    options.update(extra)
    return ['--cfg-options', *cli_options(options)]


def run(cmd: List[str]) -> str:
    return run_command(cmd, env=ENV, timeout=600)


def metric(output: str, name: str) -> float:
    """The value of ``name`` on the final test/val summary line of a log."""
    lines = [line for line in output.splitlines() if f' {name}: ' in line]
    assert lines, f'no {name} in the output:\n{output[-3000:]}'
    return float(re.search(rf' {name}: ([\d.]+)', lines[-1]).group(1))


def test_toy_set_reads_as_ade20k_with_reduced_zero_label(toy_ade):
    """Annotation value k is ADE20K class k - 1; 0 (unlabelled) is ignored."""
    init_default_scope('mmseg')
    dataset = ADE20KDataset(
        data_root=toy_ade,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')],
    )
    assert len(dataset) == 2
    drawn = {ADE20KDataset.METAINFO['classes'].index(name) for name in CLASS_COLOURS}
    labels = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        raw = cv2.imread(sample['seg_map_path'], cv2.IMREAD_UNCHANGED)
        gt = sample['gt_seg_map']
        assert sample['img'].shape == (*TOY_SIZE, 3)
        assert gt.shape == raw.shape == TOY_SIZE
        np.testing.assert_array_equal(gt == 255, raw == 0)
        np.testing.assert_array_equal(gt[raw > 0], raw[raw > 0] - 1)
        labels |= set(np.unique(gt[raw > 0]).tolist())
    assert labels == drawn


def test_tta_pipeline_resizes_like_the_original_multi_scale_test(toy_ade):
    """--tta views are mmseg 0.x's MultiScaleFlipAug(img_scale=(2048, 512),
    img_ratios, flip=True): each ratio scales the (2048, 512) target, the
    image keeps its aspect ratio (mmcv's rescale), unflipped then flipped."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, CKPT_CONFIG))
    init_default_scope('mmseg')
    stem = 'ADE_val_00000001'
    results = Compose(cfg.tta_pipeline)(
        dict(
            img_path=osp.join(toy_ade, 'images', 'validation', stem + '.jpg'),
            seg_map_path=osp.join(toy_ade, 'annotations', 'validation', stem + '.png'),
            reduce_zero_label=True,
            seg_fields=[],
        )
    )
    height, width = TOY_SIZE
    expected = []
    for ratio in cfg.img_ratios:
        factor = min(2048 * ratio / max(height, width), 512 * ratio / min(height, width))
        size = (int(height * factor + 0.5), int(width * factor + 0.5))
        expected += [(size, False), (size, True)]
    views = [
        (tuple(img.shape[1:]), sample.flip)
        for img, sample in zip(results['inputs'], results['data_samples'])
    ]
    assert views == expected
    for sample in results['data_samples']:
        assert sample.gt_sem_seg.data.shape[1:] == TOY_SIZE  # scored as read


def check_two_iteration_run(output: str, work_dir: str, config: str) -> None:
    assert 'Iter(train) [2/2]' in output
    losses = [float(x) for x in re.findall(r' loss: ([^\s]+)', output)]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    # a SyncBN config, run as it is in one CPU process: mmengine reverts SyncBN
    ran = Config.fromfile(osp.join(work_dir, config))
    assert ran.model.decode_head.norm_cfg.type == 'SyncBN'
    assert 'reverted to BatchNormXd' in output
    assert 0 <= metric(output, 'mIoU') <= 100  # validation after the last iter


@pytest.mark.parametrize(
    'config', one_per_family([c for c in SEG_CONFIGS if c != CKPT_CONFIG], model_family)
)
def test_stock_mmseg_train_runs_two_iterations(config, toy_ade, tmp_path):
    output = run(
        [
            sys.executable,
            osp.join(MMSEG_TOOLS, 'train.py'),
            osp.join(CONFIG_DIR, config),
            '--work-dir',
            str(tmp_path),
            *toy_cli_options(config, toy_ade),
        ]
    )
    check_two_iteration_run(output, str(tmp_path), config)


@pytest.fixture(scope='module')
def mim_train(toy_ade, tmp_path_factory) -> Tuple[str, str]:
    """``mim train mmseg`` of CKPT_CONFIG, keeping weights: (log, work dir)."""
    work_dir = str(tmp_path_factory.mktemp('mim_train'))
    output = run(
        [
            sys.executable,
            '-m',
            'mim',
            'train',
            MIM_PACKAGE['mmseg'],
            osp.join(CONFIG_DIR, CKPT_CONFIG),
            '--work-dir',
            work_dir,
            *toy_cli_options(
                CKPT_CONFIG,
                toy_ade,
                **{
                    'default_hooks.checkpoint.save_last': True,
                    'default_hooks.checkpoint.save_optimizer': False,
                },
            ),
        ]
    )
    return output, work_dir


def test_mim_train_runs_stock_train_py(mim_train):
    """The 2-iteration run of CKPT_CONFIG: mmseg's .mim/tools/train.py."""
    output, work_dir = mim_train
    assert f'Training command is {sys.executable} {osp.join(MMSEG_TOOLS, "train.py")} ' in output
    assert 'Training finished successfully' in output
    check_two_iteration_run(output, work_dir, CKPT_CONFIG)


@pytest.fixture(scope='module')
def checkpoint(mim_train) -> str:
    path = osp.join(mim_train[1], 'iter_2.pth')
    assert osp.isfile(path), f'mim train wrote no {path}'
    return path


@pytest.mark.parametrize('tta', [False, True], ids=['single-scale', 'tta'])
def test_test_py_reports_miou(tta, checkpoint, toy_ade, tmp_path):
    """mmseg's and this project's tools/test.py score the checkpoint alike."""
    mious = []
    for script in (osp.join(MMSEG_TOOLS, 'test.py'), osp.join(REPO_ROOT, 'tools', 'test.py')):
        output = run(
            [
                sys.executable,
                script,
                osp.join(CONFIG_DIR, CKPT_CONFIG),
                checkpoint,
                '--work-dir',
                str(tmp_path),
                *(['--tta'] if tta else []),
                *toy_cli_options(CKPT_CONFIG, toy_ade),
            ]
        )
        assert 'Load checkpoint from' in output
        tested = Config.fromfile(osp.join(tmp_path, CKPT_CONFIG))  # as run
        assert (tested.model.type == 'SegTTAModel') == tta
        mious.append(metric(output, 'mIoU'))
    assert 0 <= mious[0] <= 100
    assert mious[0] == mious[1]


def test_toy_learning_script_runs_end_to_end(tmp_path):
    """``tools/misc/train_toy_seg.py`` at a tiny scale: writes the toy set,
    trains with the stock runner, evaluates and returns the mIoU (fraction).
    (The learning check itself, mIoU >= 0.6 with the defaults: README.)"""
    work_dir = str(tmp_path)
    out = run_command(
        [
            sys.executable,
            'tools/misc/train_toy_seg.py',
            '--work-dir',
            work_dir,
            '--num-train',
            '2',
            '--num-val',
            '1',
            '--batch-size',
            '2',
            '--iters',
            '2',
            '--val-interval',
            '2',
            '--min-miou',
            '0',
        ],
        env=ENV,
    )
    miou = float(re.search(r'toy ADE20K val mIoU ([0-9.]+) after 2 iterations', out).group(1))
    assert 0 <= miou <= 1
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
