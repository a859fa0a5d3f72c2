"""HigherHRNet with the stock tools on a toy COCO-keypoints set (CPU).

mmpose's own ``tools/train.py`` (from its installed ``.mim/tools``) trains
every pose config for 2 iterations at a 64-pixel input, unedited apart from
``--cfg-options`` that point it at the toy data (and, for the 640 configs,
a derived config without mixed precision, which mmengine only runs on a
GPU); this project's ``tools/test.py`` scores the W32 checkpoint with flip
test, single-scale and multi-scale [0.5, 1, 2].
"""

import os
import os.path as osp
import pickle
import re
import sys
from typing import List

import cv2
import mmpose
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmpose.registry import DATASETS

from _helpers import REPO_ROOT, one_per_family
from _helpers import run as run_command
from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints
from crossformer_mm.testing.toy_configs import POSE_TOY_LAYOUTS, cli_options, pose_toy_overrides
from crossformer_mm.testing.toy_crowdpose import make_toy_crowdpose

pytestmark = pytest.mark.slow  # stock tools in subprocesses

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
POSE_CONFIGS = sorted(n for n in os.listdir(CONFIG_DIR) if n.startswith('higherhrnet_'))
CKPT_CONFIG = 'higherhrnet_w32_coco_512x512.py'
MMPOSE_TRAIN = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', 'train.py')
TOY_INPUT = 64
ENV = {'OMP_NUM_THREADS': '2'}  # over _helpers.run's 1 thread


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toy_coco_kpt'))
    make_toy_coco_keypoints(root, num_train=4, num_val=2, size=TOY_INPUT)
    return root


@pytest.fixture(scope='module')
def toy_crowdpose(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toy_crowdpose'))
    make_toy_crowdpose(root, num_train=5, num_test=2, size=TOY_INPUT)
    return root


def toy_layout(cfg: Config) -> str:
    """'crowdpose' or 'coco': the toy set (and layout) of a config's dataset."""
    return 'crowdpose' if cfg.train_dataloader.dataset.type == 'CrowdPoseDataset' else 'coco'


def cpu_config(config: str, work_dir: str) -> str:
    """The config itself, or for a mixed-precision config a derived one with
    a plain OptimWrapper (``AmpOptimWrapper`` asserts a GPU)."""
    path = osp.join(CONFIG_DIR, config)
    cfg = Config.fromfile(path)
    if cfg.optim_wrapper.get('type') != 'AmpOptimWrapper':
        return path
    derived = osp.join(work_dir, f'cpu_{config}')
    optimizer = dict(cfg.optim_wrapper.optimizer)
    with open(derived, 'w') as f:
        f.write(
            f'_base_ = [{path!r}]\n'
            'optim_wrapper = dict(_delete_=True, type="OptimWrapper", '
            f'optimizer={optimizer!r})\n'
        )
    return derived


def toy_cli_options(config: str, data_root: str, **extra) -> List[str]:
    """``--cfg-options`` that run ``config`` on the toy set: 2 iterations
    (4 images, batch 2, 1 epoch), no ImageNet checkpoint."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    options = pose_toy_overrides(
        cfg, data_root, TOY_INPUT, batch_size=2, **POSE_TOY_LAYOUTS[toy_layout(cfg)]
    )
    if toy_layout(cfg) == 'crowdpose':  # 4 of the 5 trainval images: 2 iterations
        options['train_dataloader.dataset.indices'] = 4
    options.update(
        {
            'model.backbone.init_cfg': None,
            'train_cfg.max_epochs': 1,
            'default_hooks.logger.interval': 1,
        }
    )
    options.update(extra)
    return ['--cfg-options', *cli_options(options)]


def run(cmd: List[str]) -> str:
    return run_command(cmd, env=ENV, timeout=600)


def train(config: str, data_root: str, work_dir: str, save_checkpoint: bool = False) -> str:
    checkpoint = {
        'default_hooks.checkpoint.save_last': save_checkpoint,
        'default_hooks.checkpoint.save_optimizer': False,
    }
    output = run(
        [
            sys.executable,
            MMPOSE_TRAIN,
            cpu_config(config, work_dir),
            '--work-dir',
            work_dir,
            *toy_cli_options(config, data_root, **checkpoint),
        ]
    )
    losses = re.findall(r'Epoch\(train\) +\[1\]\[(\d)/2\].*? loss: ([\d.e+-]+)', output)
    assert [it for it, _ in losses] == ['1', '2'], output[-3000:]
    assert all(0 < float(loss) < 1 for _, loss in losses), losses
    for name in ('loss_heatmap0', 'loss_heatmap1', 'loss_pull', 'loss_push'):
        assert name in output
    return output


@pytest.fixture(scope='module')
def w32_checkpoint(toy_coco, tmp_path_factory) -> str:
    work_dir = str(tmp_path_factory.mktemp('train_w32'))
    train(CKPT_CONFIG, toy_coco, work_dir, save_checkpoint=True)
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(checkpoint)
    return checkpoint


@pytest.mark.parametrize(
    'config',
    # a family: the backbone and the dataset (higherhrnet_w32_crowdpose, ...)
    one_per_family([c for c in POSE_CONFIGS if c != CKPT_CONFIG], lambda c: c.rsplit('_', 1)[0]),
)
def test_stock_train_runs_two_iterations(config, toy_coco, toy_crowdpose, tmp_path):
    crowdpose = toy_layout(Config.fromfile(osp.join(CONFIG_DIR, config))) == 'crowdpose'
    train(config, toy_crowdpose if crowdpose else toy_coco, str(tmp_path))


def test_640_configs_train_with_mixed_precision():
    for config in POSE_CONFIGS:
        cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
        amp = cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'
        assert amp == ('640x640' in config), config
        assert cfg.auto_scale_lr.base_batch_size == 192
        assert cfg.train_dataloader.batch_size == 24


@pytest.mark.parametrize('multiscale', [False, True])
def test_test_tool_reports_keypoint_ap(multiscale, w32_checkpoint, toy_coco, tmp_path):
    extra = {}
    if multiscale:  # the settings documented in the config
        extra = {
            'model.test_cfg.multiscale_test': True,
            'test_dataloader.dataset.pipeline.1.scale_factors': [0.5, 1.0, 2.0],
        }
    output = run(
        [
            sys.executable,
            'tools/test.py',
            osp.join(CONFIG_DIR, CKPT_CONFIG),
            w32_checkpoint,
            '--work-dir',
            str(tmp_path),
            *toy_cli_options(CKPT_CONFIG, toy_coco, **extra),
        ]
    )
    ap = re.search(r'coco/AP: (-?[\d.]+)', output)
    assert ap is not None, output[-3000:]
    assert 0 <= float(ap.group(1)) <= 1
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in output


def test_val_samples_score_perfectly_with_their_ground_truth(toy_coco):
    """The config's val dataset, pipeline and CocoMetric: predicting every
    labelled person exactly gives AP 1 (crowds and unlabelled people are
    ignored by the metric, each image is one sample)."""
    init_default_scope('mmpose')
    cfg = Config.fromfile(osp.join(CONFIG_DIR, CKPT_CONFIG))
    cfg.merge_from_dict(pose_toy_overrides(cfg, toy_coco, TOY_INPUT))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        people = [a for a in sample.raw_ann_info if a['num_keypoints'] > 0]
        keypoints = np.array([a['keypoints'] for a in people], dtype=np.float32).reshape(-1, 17, 3)
        sample.pred_instances = InstanceData(
            keypoints=keypoints[..., :2],
            keypoint_scores=np.ones(keypoints.shape[:2], dtype=np.float32),
            bbox_scores=np.ones(len(people), dtype=np.float32),
        )
        evaluator.process([sample])
    metrics = evaluator.evaluate(len(dataset))
    assert metrics['coco/AP'] == pytest.approx(1.0)


def test_crowdpose_val_samples_score_perfectly_with_their_ground_truth(toy_crowdpose):
    """The CrowdPose config's test dataset, pipeline and crowd evaluation on the
    toy CrowdPose set: predicting every person exactly gives AP 1, also in each
    populated crowd-index group (an empty group is -1, as xtcocotools reports)."""
    init_default_scope('mmpose')
    config = 'higherhrnet_w32_crowdpose_512x512.py'
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    cfg.merge_from_dict(
        pose_toy_overrides(cfg, toy_crowdpose, TOY_INPUT, **POSE_TOY_LAYOUTS['crowdpose'])
    )
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        keypoints = np.array(
            [a['keypoints'] for a in sample.raw_ann_info], dtype=np.float32
        ).reshape(-1, 14, 3)
        sample.pred_instances = InstanceData(
            keypoints=keypoints[..., :2],
            keypoint_scores=np.ones(keypoints.shape[:2], dtype=np.float32),
            bbox_scores=np.ones(len(keypoints), dtype=np.float32),
        )
        evaluator.process([sample])
    metrics = evaluator.evaluate(len(dataset))
    assert metrics['crowdpose/AP'] == pytest.approx(1.0)
    assert metrics['crowdpose/AP .5'] == metrics['crowdpose/AP .75'] == pytest.approx(1.0)
    for group in ('E', 'M', 'H'):
        assert metrics[f'crowdpose/AP({group})'] in (pytest.approx(1.0), -1), metrics


def test_toy_learning_script_runs_end_to_end(tmp_path):
    """``tools/misc/train_toy_pose.py`` at a tiny scale: writes the toy set,
    trains with the stock runner, evaluates and returns the COCO keypoint AP.
    (The learning check itself, AP >= 0.5 with the defaults, takes about 11
    minutes: see the README.)"""
    work_dir = str(tmp_path)
    out = run_command(
        [
            sys.executable,
            'tools/misc/train_toy_pose.py',
            '--work-dir',
            work_dir,
            '--num-train',
            '4',
            '--num-val',
            '2',
            '--image-size',
            '64',
            '--input-size',
            '64',
            '--batch-size',
            '2',
            '--epochs',
            '1',
            '--min-ap',
            '0',
        ],
        env=ENV,
    )
    ap = float(re.search(r'toy COCO-keypoints val AP ([0-9.]+) after 1 epochs', out).group(1))
    assert 0 <= ap <= 1
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(
        osp.join(work_dir, 'toy_coco_kpt', 'annotations', 'person_keypoints_val.json')
    )
    assert 'coco keypoint metrics: AP ' in out
    assert osp.isfile(osp.join(work_dir, 'toy_poses.png'))


def test_toy_crowdpose_learning_script_runs_end_to_end(tmp_path):
    """``tools/misc/train_toy_pose.py --dataset crowdpose`` at a tiny scale:
    writes the toy CrowdPose set (trainval / test), trains the CrowdPose
    config, evaluates with the crowd evaluation (AP and the easy / medium /
    hard split) and draws the picture. (The learning check itself: README.)"""
    work_dir = str(tmp_path)
    out = run_command(
        [
            sys.executable,
            'tools/misc/train_toy_pose.py',
            '--dataset',
            'crowdpose',
            '--work-dir',
            work_dir,
            '--num-train',
            '4',
            '--num-val',
            '3',
            '--image-size',
            '64',
            '--input-size',
            '64',
            '--batch-size',
            '2',
            '--epochs',
            '1',
            '--min-ap',
            '0',
            '--num-pictures',
            '2',
        ],
        env=ENV,
    )
    ap = float(re.search(r'toy CrowdPose test AP (-?[0-9.]+) after 1 epochs', out).group(1))
    assert 0 <= ap <= 1
    split = re.search(
        r'crowdpose keypoint metrics: AP (\S+), AP \.5 (\S+), AP \.75 (\S+), '
        r'AP\(E\) (\S+), AP\(M\) (\S+), AP\(H\) (\S+)',
        out,
    )
    assert split is not None, out[-3000:]
    assert 'type=  easy' in out and 'type=  hard' in out  # xtcocotools' crowd summary
    assert 'Evaluate annotation type *keypoints_crowd*' in out
    for name in ('trainval', 'test'):
        assert osp.isfile(
            osp.join(work_dir, 'toy_crowdpose', 'annotations', f'mmpose_crowdpose_{name}.json')
        )
    picture = cv2.imread(osp.join(work_dir, 'toy_poses.png'))
    assert picture is not None and picture.shape[1] > picture.shape[0]  # panels side by side


def test_test_tool_runs_the_network_in_onnx_runtime(w32_checkpoint, toy_coco, tmp_path):
    """HigherHRNet exported (dynamic sizes) and evaluated by ``tools/test.py --onnx``: the
    network in ONNX Runtime, flip test, grouping and the metric in the PyTorch model's code:
    the same people and the same AP as PyTorch (mmdeploy's pose backend is top-down only)."""
    # every candidate joint kept: people to compare after one epoch of training
    options = toy_cli_options(
        CKPT_CONFIG, toy_coco, **{'model.head.decoder.decode_keypoint_thr': -1e9}
    )
    config = osp.join(CONFIG_DIR, CKPT_CONFIG)
    onnx_file = str(tmp_path / 'w32.onnx')
    run(
        [
            sys.executable,
            'tools/deployment/export_onnx.py',
            config,
            w32_checkpoint,
            '--shape',
            str(TOY_INPUT),
            str(TOY_INPUT),
            '--dynamic',
            '--exporter',
            'torchscript',
            '--out',
            onnx_file,
            *options,
        ]
    )
    results = {}
    for runtime, extra in (('pytorch', []), ('onnxruntime', ['--onnx', onnx_file])):
        dump = str(tmp_path / f'{runtime}.pkl')
        test_cmd = [sys.executable, 'tools/test.py', config, w32_checkpoint, '--out', dump]
        output = run(test_cmd + ['--work-dir', str(tmp_path / runtime), *extra, *options])
        metrics = re.findall(r'coco/(AP[^:]*|AR[^:]*): (-?[\d.]+)', output)
        assert len(metrics) == 10, output[-3000:]
        with open(dump, 'rb') as f:  # the dump this test just wrote
            predictions = pickle.load(f)
        results[runtime] = metrics, predictions
    (metrics, predictions), (ort_metrics, ort_predictions) = results.values()
    assert ort_metrics == metrics
    assert len(predictions) == len(ort_predictions) == 2
    people = 0
    for ours, expected in zip(ort_predictions, predictions):
        ours, expected = ours['pred_instances'], expected['pred_instances']
        assert ours['keypoints'].shape == expected['keypoints'].shape
        np.testing.assert_allclose(ours['keypoints'], expected['keypoints'], atol=1e-2)
        np.testing.assert_allclose(ours['keypoint_scores'], expected['keypoint_scores'], atol=1e-4)
        people += len(expected['keypoints'])
    assert people > 0
