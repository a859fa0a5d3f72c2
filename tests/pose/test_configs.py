"""The pose configs: one model recipe per size shared by COCO and CrowdPose,
the datasets' joints, splits and metrics."""

import os.path as osp

import pytest
from mmengine.config import Config
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS

from _helpers import REPO_ROOT
from crossformer_mm.pose.codec import COCO_KEYPOINT_ORDER, CROWDPOSE_KEYPOINT_ORDER

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
MODELS = ('w32_{}_512x512', 'w32_{}_640x640', 'w48_{}_640x640')


def load(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, f'higherhrnet_{name}.py'))


def test_crowdpose_order_is_the_original_truncated_coco_order():
    assert sorted(CROWDPOSE_KEYPOINT_ORDER) == list(range(14))
    assert CROWDPOSE_KEYPOINT_ORDER == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)


@pytest.mark.parametrize('model', MODELS)
def test_coco_and_crowdpose_differ_only_in_dataset_and_joints(model):
    coco, crowd = load(model.format('coco')), load(model.format('crowdpose'))
    assert coco.model.head.pop('num_keypoints') == 17
    assert crowd.model.head.pop('num_keypoints') == 14
    assert tuple(coco.model.head.decoder.pop('decode_keypoint_order')) == COCO_KEYPOINT_ORDER
    assert tuple(crowd.model.head.decoder.pop('decode_keypoint_order')) == CROWDPOSE_KEYPOINT_ORDER
    assert coco.model == crowd.model
    for key in (
        'optim_wrapper',
        'param_scheduler',
        'train_cfg',
        'auto_scale_lr',
        'default_hooks',
        'custom_imports',
    ):
        assert coco[key] == crowd[key], key
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert coco[loader].dataset.pipeline == crowd[loader].dataset.pipeline
        assert coco[loader].batch_size == crowd[loader].batch_size


def test_crowdpose_configs_train_on_trainval_and_test_on_test():
    for model in MODELS:
        cfg = load(model.format('crowdpose'))
        assert cfg.train_dataloader.dataset.type == 'CrowdPoseDataset'
        assert cfg.train_dataloader.dataset.ann_file.endswith('mmpose_crowdpose_trainval.json')
        for split in ('val', 'test'):
            assert cfg[f'{split}_dataloader'].dataset.ann_file.endswith(
                'mmpose_crowdpose_test.json'
            )
            evaluator = cfg[f'{split}_evaluator']
            assert evaluator.ann_file.endswith('mmpose_crowdpose_test.json')
            assert (evaluator.iou_type, evaluator.use_area, evaluator.prefix) == (
                'keypoints_crowd',
                False,
                'crowdpose',
            )
        size = int(model[-3:])
        assert cfg.train_dataloader.dataset.pipeline[1].input_size == (size, size)
        assert cfg.test_dataloader.dataset.pipeline[1].input_size == size


def test_crowdpose_joints_match_mmpose_metainfo():
    cfg = load('w32_crowdpose_512x512')
    meta = parse_pose_metainfo(DATASETS.get('CrowdPoseDataset').METAINFO)
    assert meta['num_keypoints'] == cfg.model.head.num_keypoints == 14
    assert meta['keypoint_id2name'][12] == 'top_head' and meta['keypoint_id2name'][13] == 'neck'
