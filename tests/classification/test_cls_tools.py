"""Stock tools and the package's classification tools, as subprocesses:
``mim test mmpretrain`` on a released-layout file, ``mim train mmpretrain``
with the published recipe, the digits learning check, the throughput tool."""

import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from _helpers import MIM_PACKAGE, REPO_ROOT, run
from classification.cls_helpers import (
    build_classifier,
    load_config,
    released_state_dict,
    yacs_config,
)
from crossformer_mm.testing.toy_digits import make_toy_digits

T_CONFIG = osp.join(REPO_ROOT, 'configs', 'crossformer-t_8xb128_in1k.py')
#: The published pipelines at the 32 px of the toy digits (crop 32, short side 32).
SMALL_IMAGES = [
    'train_dataloader.dataset.pipeline.1.scale=32',
    'val_dataloader.dataset.pipeline.1.scale=32',
    'val_dataloader.dataset.pipeline.2.crop_size=32',
    'test_dataloader.dataset.pipeline.1.scale=32',
    'test_dataloader.dataset.pipeline.2.crop_size=32',
]


def data_options(data_root: str, batch_size: int = 4):
    options = []
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
            f'{split}_dataloader.batch_size={batch_size}',
        ]
    return options + SMALL_IMAGES


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    """50 digits: 40 train, 10 val."""
    root = str(tmp_path_factory.mktemp('digits'))
    assert make_toy_digits(root, 32, limit=50) == {'train': 40, 'val': 10}
    return root


@pytest.mark.slow
def test_mim_test_evaluates_a_released_layout_file(digits, tmp_path):
    """CrossFormer-T in the released layout ({'model': ..., 'config': yacs}, DPB
    index buffers included) whose head always answers 0: ``mim test`` loads it
    (load_from) with no key mismatch and reports exactly the share of 0s."""
    model = build_classifier(load_config('crossformer-t_8xb128_in1k.py').model)
    released = released_state_dict(model)
    released['head.weight'].zero_()
    released['head.bias'].fill_(-1.0)
    released['head.bias'][0] = 10.0
    checkpoint = str(tmp_path / 'crossformer-t.pth')
    torch.save({'model': released, 'config': yacs_config()}, checkpoint)
    out = run(
        [
            'mim',
            'test',
            MIM_PACKAGE['mmpretrain'],
            T_CONFIG,
            '--checkpoint',
            checkpoint,
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            *data_options(digits),
        ],
        timeout=600,
    )
    assert 'do not match exactly' not in out and 'missing keys' not in out, out[-3000:]
    labels = [line.split()[1] for line in open(osp.join(digits, 'meta', 'val.txt'))]
    top1 = float(re.search(r'accuracy/top1: ([0-9.]+)', out).group(1))
    assert top1 == pytest.approx(100.0 * labels.count('0') / len(labels)), out[-2000:]
    assert 0 < top1 < 100


@pytest.mark.slow
def test_mim_train_runs_the_published_recipe(digits, tmp_path):
    """One epoch of the published CrossFormer-T recipe (RandAugment, random
    erasing, Mixup / CutMix, label smoothing, AdamW with clipping, warm-up)
    through ``mim train mmpretrain`` on 32 px digits; it saves a checkpoint and
    validates."""
    work_dir = str(tmp_path / 'work')
    out = run(
        [
            'mim',
            'train',
            MIM_PACKAGE['mmpretrain'],
            T_CONFIG,
            '--work-dir',
            work_dir,
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=2',
            *data_options(digits),
        ],
        timeout=600,
    )
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth')), out[-3000:]
    assert re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1: [0-9.]+', out), out[-3000:]
    # auto_scale_lr (base 512) scaled the lr to this batch: 5e-4 x 4 / 512
    assert 'Scaling the original LR by 0.0078125' in out


@pytest.mark.slow
def test_digits_learning_check_tiny_run_and_its_threshold(tmp_path):
    """``tools/misc/train_digits_cls.py`` at a tiny scale (the check itself:
    README): writes the digits, trains with the stock runner, reports top-1;
    exits with status 1 below ``--min-top1``."""
    args = [
        sys.executable,
        'tools/misc/train_digits_cls.py',
        '--limit',
        '100',
        '--epochs',
        '2',
        '--log-interval',
        '5',
    ]
    out = run(args + ['--work-dir', str(tmp_path / 'a'), '--min-top1', '0'])
    top1 = float(re.search(r'digits val top-1 ([0-9.]+) after 2 epochs', out).group(1))
    assert 0 <= top1 <= 1
    assert osp.isfile(osp.join(str(tmp_path / 'a'), 'epoch_2.pth'))
    failed = subprocess.run(
        args + ['--work-dir', str(tmp_path / 'b'), '--min-top1', '1.01'],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env=dict(__import__('os').environ, OMP_NUM_THREADS='1'),
    )
    assert failed.returncode == 1, failed.stdout[-2000:]
    assert 'is below --min-top1 1.01' in failed.stdout


@pytest.mark.slow
def test_throughput_tool():
    out = run(
        [
            sys.executable,
            'tools/analysis/cls_throughput.py',
            T_CONFIG,
            '--batch-size',
            '2',
            '--warmup',
            '1',
            '--iters',
            '2',
            '--image-size',
            '64',
            '--device',
            'cpu',
        ]
    )
    assert float(re.search(r'throughput: ([0-9.]+) images/s', out).group(1)) > 0
    if not torch.cuda.is_available():
        result = subprocess.run(
            [sys.executable, 'tools/analysis/cls_throughput.py', T_CONFIG, '--device', 'cuda'],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode != 0 and 'use --device cpu' in result.stderr
