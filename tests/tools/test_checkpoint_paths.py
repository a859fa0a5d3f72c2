"""Every way a checkpoint gets loaded goes through the safe loader
(crossformer_mm/utils/safe_load.py), with the stock tools run as users run them:

- a payload file (its pickle would run ``touch MARKER``) is refused with the
  safe loader's error on each path: the backbone ``init_cfg``, the three
  converters, ``load_from`` and ``--resume`` of mmdet's stock train.py,
  ``tools/test.py``, ``mim test``, ``init_detector``, mmseg / mmpose
  ``init_model`` and the mmdet / mmseg / mmpose inferencers; the marker never
  appears;
- real checkpoints written by the stock runners of mmdet, mmseg and mmpose
  (optimizer, message hub, numpy scalars and arrays) resume and test.
"""

import os
import os.path as osp
import re
import subprocess
import sys
import textwrap
from typing import List

import mmdet
import mmpose
import mmseg
import pytest
import torch
from mmengine.config import Config

from _helpers import MIM_PACKAGE, REPO_ROOT, command_env, make_toy_set, run
from crossformer_mm.testing.toy_ade import make_toy_ade
from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints
from crossformer_mm.testing.toy_configs import (
    det_smoke_options,
    pose_learning_config,
    seg_learning_config,
)
from crossformer_mm.utils import safe_load

pytestmark = pytest.mark.slow

DET_CONFIG = osp.join(REPO_ROOT, 'configs/demo/mask_rcnn_crossformer_mini_fpn_toy.py')
SEG_CONFIG = osp.join(REPO_ROOT, 'configs/upernet_crossformer_s_512x512_160k_ade20k.py')
SEG_FPN_CONFIG = osp.join(REPO_ROOT, 'configs/fpn_crossformerpp_s_512x512_80k_ade20k.py')
POSE_CONFIG = osp.join(REPO_ROOT, 'configs/higherhrnet_w32_coco_512x512.py')
ENV = {'MKL_NUM_THREADS': '1'}


def stock_tool(package, name: str) -> str:
    """A toolbox's own script (``PKG/.mim/tools/NAME``), as ``mim`` runs it."""
    return osp.join(osp.dirname(package.__file__), '.mim', 'tools', name)


class SystemPayload:
    """Unpickling runs ``touch MARKER``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def refused(args: List[str], payload: str, **kwargs) -> str:
    """Run a command that must fail with the safe loader's refusal of ``payload``."""
    env = command_env(ENV)
    env.pop(safe_load.TRUSTED_ENV, None)
    result = subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        **kwargs,
    )
    assert result.returncode != 0, result.stdout[-3000:]
    assert (
        f'UnsafeCheckpointError: checkpoint {payload} needs the pickle global posix.system'
        in result.stdout
    ), result.stdout[-3000:]
    assert f'{safe_load.TRUSTED_ENV}={payload}' in result.stdout
    return result.stdout


@pytest.fixture(scope='module')
def payload(tmp_path_factory):
    """(payload file, marker); the marker must never exist."""
    root = tmp_path_factory.mktemp('payload')
    marker = str(root / 'MARKER')
    path = str(root / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'note': SystemPayload(marker)}}, path)
    yield path, marker
    assert not osp.exists(marker), 'a payload ran'


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory) -> str:
    return make_toy_set(str(tmp_path_factory.mktemp('toy_coco')))


@pytest.fixture(scope='module')
def det_options(toy_coco) -> List[str]:
    return det_smoke_options(Config.fromfile(DET_CONFIG), toy_coco) + [
        'default_hooks.checkpoint.save_optimizer=True'
    ]


# the payload on every path ----------------------------------------------------------
def test_load_from_of_stock_train_refuses_the_payload(payload, det_options, tmp_path):
    refused(
        [
            sys.executable,
            stock_tool(mmdet, 'train.py'),
            DET_CONFIG,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *det_options,
            f'load_from={payload[0]}',
        ],
        payload[0],
    )


def test_resume_of_stock_train_refuses_the_payload(payload, det_options, tmp_path):
    refused(
        [
            sys.executable,
            stock_tool(mmdet, 'train.py'),
            DET_CONFIG,
            '--work-dir',
            str(tmp_path),
            '--resume',
            payload[0],
            '--cfg-options',
            *det_options,
        ],
        payload[0],
    )


def test_test_py_refuses_the_payload(payload, det_options, tmp_path):
    refused(
        [
            sys.executable,
            'tools/test.py',
            DET_CONFIG,
            payload[0],
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *det_options,
        ],
        payload[0],
    )


def test_mim_test_refuses_the_payload(payload, det_options, tmp_path):
    out = refused(
        [
            'mim',
            'test',
            MIM_PACKAGE['mmdet'],
            DET_CONFIG,
            '-C',
            payload[0],
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *det_options,
        ],
        payload[0],
    )
    assert 'mmdet/.mim/tools/test.py' in out


def test_init_cfg_converters_apis_and_inferencers_refuse_the_payload(payload, tmp_path):
    """One interpreter: the backbone init_cfg of a detector built from its config,
    the converters' command lines (run as __main__), init_detector, mmseg and
    mmpose init_model, and the mmdet / mmseg / mmpose inferencers."""
    path = payload[0]
    converters = {
        'crossformer_cls_to_backbone': [path, str(tmp_path / 'o1.pth')],
        'crossformer_det_v2_to_v3': [DET_CONFIG, path, str(tmp_path / 'o2.pth')],
        'higherhrnet_official_to_mmpose': [path, str(tmp_path / 'o3.pth')],
    }
    code = f"""
        import runpy, sys
        from crossformer_mm.utils.safe_load import UnsafeCheckpointError

        def check(name, load):
            try:
                load()
            except UnsafeCheckpointError as error:
                assert {path!r} in str(error) and 'posix.system' in str(error), error
                print('refused:', name)
            else:
                print('NOT refused:', name)

        def init_cfg():
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            from mmdet.registry import MODELS
            cfg = Config.fromfile({DET_CONFIG!r})
            cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint={path!r})
            init_default_scope('mmdet')
            MODELS.build(cfg.model).init_weights()
        check('init_cfg', init_cfg)

        def converter(script, args):
            sys.argv = [script, *args]
            runpy.run_path(script, run_name='__main__')
        for name, args in {converters!r}.items():
            check(name, lambda: converter(f'tools/convert/{{name}}.py', args))

        from mmdet.apis import DetInferencer, init_detector
        check('init_detector', lambda: init_detector({DET_CONFIG!r}, {path!r}, device='cpu'))
        check('DetInferencer', lambda: DetInferencer({DET_CONFIG!r}, {path!r}, device='cpu'))
        from mmseg.apis import MMSegInferencer, init_model as init_segmentor
        check('mmseg init_model', lambda: init_segmentor({SEG_FPN_CONFIG!r}, {path!r}, 'cpu'))
        check('MMSegInferencer', lambda: MMSegInferencer({SEG_FPN_CONFIG!r}, {path!r},
                                                         device='cpu'))
        from mmpose.apis import MMPoseInferencer, init_model as init_pose_model
        check('mmpose init_model', lambda: init_pose_model({POSE_CONFIG!r}, {path!r}, 'cpu'))
        check('MMPoseInferencer', lambda: MMPoseInferencer({POSE_CONFIG!r}, {path!r},
                                                           device='cpu'))
    """
    out = run([sys.executable, '-c', textwrap.dedent(code)], env=ENV)
    names = [
        'init_cfg',
        *converters,
        'init_detector',
        'DetInferencer',
        'mmseg init_model',
        'MMSegInferencer',
        'mmpose init_model',
        'MMPoseInferencer',
    ]
    assert re.findall(r'^(?:NOT )?refused: (.+)$', out, re.M) == names, out[-3000:]
    assert 'NOT refused' not in out


# real runner checkpoints resume and test ---------------------------------------------
def checkpoint_contents(path: str, optimizer: bool = True) -> dict:
    """The safe-loaded checkpoint, which holds a message hub (and optimizer state)."""
    checkpoint = safe_load.load_checkpoint(path)
    for key in ('state_dict', 'message_hub', 'meta') + (('optimizer',) if optimizer else ()):
        assert key in checkpoint, sorted(checkpoint)
    assert not optimizer or checkpoint['optimizer']['state'], 'no optimizer state saved'
    assert checkpoint['message_hub']['log_scalars'], 'no message hub saved'
    return checkpoint


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def check_safe_load_used(out: str) -> None:
    assert 'compat patch safe_checkpoint_loading' in out
    assert 'Loads checkpoint by local backend from path' in out


def test_detection_checkpoint_resumes_and_tests(det_options, tmp_path):
    """mmdet's stock train.py (2 iterations), its --resume (2 more), tools/test.py."""
    work_dir = str(tmp_path / 'det')
    train = stock_tool(mmdet, 'train.py')
    run(
        [sys.executable, train, DET_CONFIG, '--work-dir', work_dir, '--cfg-options', *det_options],
        env=ENV,
    )
    checkpoint_contents(osp.join(work_dir, 'epoch_1.pth'))
    out = run(
        [
            sys.executable,
            train,
            DET_CONFIG,
            '--work-dir',
            work_dir,
            '--resume',
            '--cfg-options',
            *det_options,
            'train_cfg.max_epochs=2',
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert 'resumed epoch: 1, iter: 2' in out
    assert checkpoint_contents(last_checkpoint(work_dir))['meta']['iter'] == 4
    out = run(
        [
            sys.executable,
            'tools/test.py',
            DET_CONFIG,
            last_checkpoint(work_dir),
            '--work-dir',
            str(tmp_path / 'test'),
            '--cfg-options',
            *det_options,
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert re.search(r'coco/bbox_mAP: -?[\d.]+', out), out[-3000:]


def dumped(cfg: Config, path: str) -> str:
    cfg.dump(path)
    return path


def test_segmentation_checkpoint_resumes_and_tests(tmp_path):
    """mmseg's stock train.py (2 iterations of the toy UPerNet), --resume (1 more),
    mmseg's stock test.py."""
    data_root = str(tmp_path / 'toy_ade')
    make_toy_ade(data_root, num_train=2, num_val=1, height=64, width=64)
    work_dir = str(tmp_path / 'seg')
    cfg = seg_learning_config(
        SEG_CONFIG,
        data_root,
        work_dir,
        image_short_side=64,
        crop_size=(64, 64),
        batch_size=2,
        iters=2,
        val_interval=2,
        log_interval=1,
        lr=1e-3,
        seed=0,
    )
    cfg.default_hooks.checkpoint.save_optimizer = True
    config = dumped(cfg, str(tmp_path / 'seg_toy.py'))
    run([sys.executable, stock_tool(mmseg, 'train.py'), config], env=ENV)
    checkpoint_contents(osp.join(work_dir, 'iter_2.pth'))
    out = run(
        [
            sys.executable,
            stock_tool(mmseg, 'train.py'),
            config,
            '--resume',
            '--cfg-options',
            'train_cfg.max_iters=3',
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert 'resumed epoch: 0, iter: 2' in out
    out = run(
        [
            sys.executable,
            stock_tool(mmseg, 'test.py'),
            config,
            osp.join(work_dir, 'iter_2.pth'),
            '--work-dir',
            str(tmp_path / 'test'),
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert re.search(r'mIoU: [\d.]+', out), out[-3000:]


def test_pose_checkpoint_resumes_and_tests(tmp_path):
    """mmpose's stock train.py (2 iterations of the toy HigherHRNet, best-AP
    checkpoint too), --resume (1 more epoch), tools/test.py."""
    data_root = str(tmp_path / 'toy_kpt')
    make_toy_coco_keypoints(data_root, num_train=4, num_val=2, size=64)
    work_dir = str(tmp_path / 'pose')
    cfg = pose_learning_config(
        POSE_CONFIG,
        data_root,
        work_dir,
        input_size=64,
        batch_size=2,
        epochs=1,
        log_interval=1,
        lr=1e-3,
        tag_loss_factor=1e-3,
        seed=0,
    )
    cfg.default_hooks.checkpoint.update(save_optimizer=True, save_best='coco/AP', rule='greater')
    config = dumped(cfg, str(tmp_path / 'pose_toy.py'))
    run([sys.executable, stock_tool(mmpose, 'train.py'), config], env=ENV)
    best = [n for n in os.listdir(work_dir) if n.startswith('best_coco_AP')]
    assert len(best) == 1, os.listdir(work_dir)
    checkpoint_contents(osp.join(work_dir, best[0]), optimizer=False)  # mmengine: never
    checkpoint_contents(osp.join(work_dir, 'epoch_1.pth'))
    out = run(
        [
            sys.executable,
            stock_tool(mmpose, 'train.py'),
            config,
            '--resume',
            '--cfg-options',
            'train_cfg.max_epochs=2',
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert 'resumed epoch: 1, iter: 2' in out
    out = run(
        [
            sys.executable,
            'tools/test.py',
            config,
            osp.join(work_dir, best[0]),
            '--work-dir',
            str(tmp_path / 'test'),
        ],
        env=ENV,
    )
    check_safe_load_used(out)
    assert re.search(r'coco/AP: -?[\d.]+', out), out[-3000:]
