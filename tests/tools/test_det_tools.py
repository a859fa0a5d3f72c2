"""The tools on detection, each run as its own process the way users run
them: train -> --resume -> test --eval bbox segm, 2-process torchrun (gloo),
mim (stock mmdet route, and this package installed), converters, FLOPs and
the prediction picture."""

import json
import os
import os.path as osp
import shutil
import sys
from glob import glob

import numpy as np
import pytest
import torch
from mmengine.config import Config

from _helpers import MIM_PACKAGE, ONEDL, REPO_ROOT, make_toy_set, run
from crossformer_mm.testing.toy_configs import TOY_CLASSES, det_smoke_options
from crossformer_mm.utils import convert_mmdet2

pytestmark = pytest.mark.slow  # stock tools in subprocesses

DEMO_CONFIG = 'configs/demo/mask_rcnn_crossformer_mini_fpn_toy.py'


def python(*args, **kwargs) -> str:
    return run([sys.executable, *map(str, args)], **kwargs)


def checkpoint_meta(work_dir) -> dict:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return torch.load(f.read().strip(), weights_only=False)['meta']


def read_metrics(work_dir) -> dict:
    """Metrics json that ``tools/test.py`` / mmengine wrote in a work dir."""
    files = sorted(glob(osp.join(str(work_dir), '*', '*.json')))
    assert files, f'no metrics json under {work_dir}'
    with open(files[-1]) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_set(str(tmp_path_factory.mktemp('toy_coco')))


@pytest.fixture(scope='module')
def demo_options(toy_root):
    return det_smoke_options(Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG)), toy_root)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, demo_options):
    """tools/train.py: 1 epoch = 2 iterations of the demo model."""
    work_dir = tmp_path_factory.mktemp('train')
    python('tools/train.py', DEMO_CONFIG, '--work-dir', work_dir, '--cfg-options', *demo_options)
    assert checkpoint_meta(work_dir)['iter'] == 2
    return work_dir


def test_make_toy_coco_annotations_match_masks(toy_root):
    from pycocotools.coco import COCO

    coco = COCO(osp.join(toy_root, 'annotations/instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(TOY_CLASSES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= len(coco.getImgIds())
    for ann in anns:
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        assert ann['area'] == mask.sum() > 0
        assert ann['bbox'] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]


def test_resume_continues_training(trained, tmp_path, demo_options):
    work_dir = tmp_path / 'resumed'
    shutil.copytree(trained, work_dir)
    out = python(
        'tools/train.py',
        DEMO_CONFIG,
        '--work-dir',
        work_dir,
        '--resume',
        '--cfg-options',
        *demo_options,
        'train_cfg.max_epochs=2',
    )
    assert 'resumed epoch: 1, iter: 2' in out
    assert checkpoint_meta(work_dir)['iter'] == 4
    assert osp.isfile(work_dir / 'epoch_2.pth')


def test_test_eval_bbox_segm_gives_coco_metrics(trained, tmp_path, demo_options):
    out = python(
        'tools/test.py',
        DEMO_CONFIG,
        trained / 'epoch_1.pth',
        '--eval',
        'bbox',
        'segm',
        '--work-dir',
        tmp_path,
        '--out',
        tmp_path / 'predictions.pkl',
        '--show-dir',
        'painted',
        '--cfg-options',
        *demo_options,
    )
    assert 'Evaluate annotation type *segm*' in out
    metrics = read_metrics(tmp_path)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        assert 0.0 <= metrics[key] <= 1.0, metrics
    assert osp.getsize(tmp_path / 'predictions.pkl') > 0
    assert len(glob(osp.join(str(tmp_path), '*', 'painted', '*.png'))) == 4


def test_dist_train_and_test_two_processes_gloo(tmp_path, demo_options):
    """tools/dist_train.sh and dist_test.sh (torchrun): 2 processes, gloo,
    a SyncBN head; the test gathers results of both ranks for COCO eval."""
    port = 29500 + os.getpid() % 1000
    out = run(
        [
            'bash',
            'tools/dist_train.sh',
            DEMO_CONFIG,
            '2',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *demo_options,
            'train_dataloader.dataset.indices=8',
            'model.roi_head.mask_head.norm_cfg.type=SyncBN',
        ],
        env=dict(PORT=str(port)),
    )
    assert "'gloo' process-group backend instead of 'nccl'" in out
    assert 'SyncBN layers reverted to BatchNorm' in out
    assert checkpoint_meta(tmp_path)['iter'] == 2  # 8 images / (2 x 2)
    run(
        [
            'bash',
            'tools/dist_test.sh',
            DEMO_CONFIG,
            str(tmp_path / 'epoch_1.pth'),
            '2',
            '--eval',
            'bbox',
            '--work-dir',
            str(tmp_path / 'test'),
            '--cfg-options',
            *demo_options,
        ],
        env=dict(PORT=str(port + 1)),
    )
    assert 'coco/bbox_mAP' in read_metrics(tmp_path / 'test')


def test_mim_train_mmdet_stock_script(tmp_path, toy_root):
    """`mim train mmdet CONFIG --gpus 0` runs mmdet's own train.py."""
    config = 'configs/mask_rcnn_crossformer_s_fpn_1x_coco.py'
    options = det_smoke_options(Config.fromfile(osp.join(REPO_ROOT, config)), toy_root)
    out = run(
        [
            'mim',
            'train',
            MIM_PACKAGE['mmdet'],
            config,
            '--gpus',
            '0',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *options,
        ]
    )
    assert 'mmdet/.mim/tools/train.py' in out
    assert checkpoint_meta(tmp_path)['iter'] == 2


def test_mim_with_the_package_installed(tmp_path, trained, demo_options):
    """A regular install ships crossformer_mm/.mim/{tools,configs}: `mim
    train crossformer_mm` finds the config by name and our train.py, `mim
    test ... --eval bbox` our test.py. onedl-mim 0.5.1 takes a wheel install's
    .dist-info folder for the package's root (the first file of its RECORD): there
    the toolbox's spelling trains and tests the installed config by its path (README,
    "mim on each stack")."""
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE', 'model-index.yml'):
        if osp.exists(osp.join(REPO_ROOT, name)):
            shutil.copy(osp.join(REPO_ROOT, name), source / name)
    for name in ('crossformer_mm', 'tools', 'configs'):
        shutil.copytree(
            osp.join(REPO_ROOT, name),
            source / name,
            symlinks=True,
            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'),
        )
    site = tmp_path / 'site'
    run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            '-q',
            '--target',
            str(site),
            str(source),
        ]
    )
    installed = site / 'crossformer_mm' / '.mim'
    assert (installed / 'tools' / 'train.py').is_file()
    assert not (installed / 'tools').is_symlink()
    assert not list(site.glob('*.pth'))  # nothing runs at interpreter start
    assert (installed / 'configs' / '_base_' / 'det_schedule_adamw_1x.py').is_file()

    env = dict(PYTHONPATH=str(site))
    name = osp.basename(DEMO_CONFIG)
    if ONEDL:
        package, config = MIM_PACKAGE['mmdet'], str(installed / 'configs' / 'demo' / name)
        script, eval_args = 'mmdet/.mim/tools/train.py', []
    else:
        package, config = 'crossformer_mm', name
        script, eval_args = f'{installed}/tools/train.py', ['--eval', 'bbox']
    work_dir = tmp_path / 'work'
    out = run(
        ['mim', 'train', package, config, '--gpus', '0', '--work-dir', str(work_dir)]
        + ['--cfg-options', *demo_options],
        cwd=tmp_path,
        env=env,
    )
    assert script in out
    assert checkpoint_meta(work_dir)['iter'] == 2
    run(
        ['mim', 'test', package, config, '-C', str(trained / 'epoch_1.pth'), *eval_args]
        + ['--work-dir', str(tmp_path / 'test'), '--cfg-options', *demo_options],
        cwd=tmp_path,
        env=env,
    )
    metrics = read_metrics(tmp_path / 'test')
    assert 'coco/bbox_mAP' in metrics
    assert ('coco/segm_mAP' in metrics) == ONEDL  # --eval bbox: box AP only


def test_convert_classification_checkpoint(tmp_path, reference_dir):
    """A released-layout CrossFormer-S file (yacs-free here) -> backbone."""
    from crossformer_mm.models.backbones import CrossFormer

    state_dict = CrossFormer(arch='small').state_dict()
    dropped = {}
    with open(osp.join(reference_dir, 'crossformer_s_keys.txt')) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 4 and fields[3] == 'DROP':
                shape = json.loads(fields[2])
                dropped[fields[1]] = torch.zeros(shape)
    assert len(dropped) == 28  # head, norm, DPB buffers of the released file
    src = tmp_path / 'crossformer-s.pth'
    torch.save(dict(model={**state_dict, **dropped}, epoch=300), src)
    dst = tmp_path / 'backbone' / 'crossformer-s.pth'
    out = python('tools/convert/crossformer_cls_to_backbone.py', src, dst, '--arch', 'small')
    assert 'dropped 28 keys' in out and 'head.weight' in out
    converted = torch.load(dst)['state_dict']
    assert sorted(converted) == sorted(state_dict)


def test_convert_mmdet2_detection_checkpoint(tmp_path, trained):
    """An mmdet 2.x-format file (mmcv 1.x meta, CLASSES, optimizer) of the
    demo detector converts losslessly and tests with tools/test.py."""
    state_dict = torch.load(trained / 'epoch_1.pth', weights_only=False)['state_dict']
    src = tmp_path / 'v2.pth'
    torch.save(
        dict(
            meta=dict(
                mmdet_version='2.8.0',
                CLASSES=TOY_CLASSES,
                config='model = dict(...)',
                epoch=12,
                iter=2,
            ),
            state_dict=state_dict,
            optimizer=dict(state={}, param_groups=[]),
        ),
        src,
    )
    dst = tmp_path / 'v3.pth'
    out = python('tools/convert/crossformer_det_v2_to_v3.py', DEMO_CONFIG, src, dst)
    assert 'no key needed renaming' in out
    converted = torch.load(dst)
    assert converted['meta']['dataset_meta']['classes'] == TOY_CLASSES
    assert 'optimizer' not in converted
    for key, value in state_dict.items():
        assert torch.equal(converted['state_dict'][key], value), key

    converter = convert_mmdet2
    broken = dict(state_dict)
    broken['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(5, 256)
    del broken['rpn_head.rpn_conv.bias']
    with pytest.raises(ValueError) as error:
        converter.convert(dict(state_dict=broken), converter.build_model(DEMO_CONFIG))
    assert 'missing: rpn_head.rpn_conv.bias' in str(error.value)
    assert 'shape of roi_head.bbox_head.fc_cls.weight' in str(error.value)


def test_get_flops_reports_params_and_flops():
    out = python('tools/analysis/get_flops.py', DEMO_CONFIG, '--shape', '128', '128')
    params = float(out.split('Params: ')[1].split(' M')[0])
    flops = float(out.split('FLOPs: ')[1].split(' G')[0])
    assert params == pytest.approx(2.95, abs=0.01)
    assert 0.1 < flops < 50


def test_visualize_predictions_writes_a_picture(trained, toy_root, tmp_path, demo_options):
    out_file = tmp_path / 'predictions.png'
    python(
        'tools/misc/visualize_predictions.py',
        DEMO_CONFIG,
        trained / 'epoch_1.pth',
        osp.join(toy_root, 'val'),
        '--out',
        out_file,
        '--num',
        '4',
        '--score-thr',
        '0.0',
        '--upscale',
        '2',
    )
    import mmcv

    picture = mmcv.imread(str(out_file))
    assert picture.shape == (2 * 64, 4 * 2 * 64 + 3 * 4, 3)
