"""The CLI plumbing of tools/train.py / tools/test.py (crossformer_mm/utils/cli.py)."""

import os.path as osp

import pytest
from mmengine.config import Config

from _helpers import REPO_ROOT
from crossformer_mm.utils import cli


def config(name: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', name))


def test_eval_maps_onto_coco_metric():
    cfg = config('mask_rcnn_crossformer_s_fpn_1x_coco.py')
    assert cli.apply_eval_metrics(cfg, ['bbox', 'segm']) == ['CocoMetric']
    assert cfg.test_evaluator.metric == ['bbox', 'segm']
    cli.apply_eval_metrics(cfg, ['bbox'], dict(classwise=True))
    assert cfg.test_evaluator.metric == ['bbox']
    assert cfg.test_evaluator.classwise is True


def test_eval_errors_are_clear():
    cfg = config('retinanet_crossformer_s_fpn_1x_coco.py')
    with pytest.raises(ValueError, match='no mask head'):
        cli.apply_eval_metrics(cfg, ['bbox', 'segm'])
    with pytest.raises(ValueError, match='not a metric of CocoMetric'):
        cli.apply_eval_metrics(cfg, ['mIoU'])
    cfg.test_evaluator = dict(type='DumpDetResults', out_file_path='x.pkl')
    with pytest.raises(ValueError, match='cannot be mapped'):
        cli.apply_eval_metrics(cfg, ['bbox'])


def test_eval_for_segmentation_and_pose_configs():
    seg = config('fpn_crossformer_s_512x512_80k_ade20k.py')
    cli.apply_eval_metrics(seg, ['mIoU', 'mDice'])
    assert seg.test_evaluator.iou_metrics == ['mIoU', 'mDice']
    with pytest.raises(ValueError, match='not a metric of IoUMetric'):
        cli.apply_eval_metrics(seg, ['bbox'])
    pose = config('higherhrnet_w32_coco_512x512.py')
    assert cli.apply_eval_metrics(pose, ['mAP']) == ['CocoMetric']
    with pytest.raises(ValueError, match='choose from mAP'):
        cli.apply_eval_metrics(pose, ['bbox'])


def test_eval_for_classification_configs():
    cls = config('crossformer-s_8xb128_in1k.py')
    assert cli.toolbox_of(cls) == 'mmpretrain'
    assert cli.apply_eval_metrics(cls, ['accuracy']) == ['Accuracy']
    with pytest.raises(ValueError, match='choose from accuracy'):
        cli.apply_eval_metrics(cls, ['bbox'])


def test_toolbox_of_rejects_other_scopes():
    with pytest.raises(ValueError, match="default_scope='mmocr'"):
        cli.toolbox_of(Config(dict(default_scope='mmocr')))
