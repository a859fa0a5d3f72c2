"""mmpose's inference APIs with every pose config of this package, in a fresh
interpreter that imports ``mmpose.apis`` before anything of this package.

``mmpose.apis.init_model`` + ``inference_bottomup`` and
``MMPoseInferencer(pose2d=CONFIG, pose2d_weights=CKPT)`` run each config, as
it is but for a smaller test input (:data:`INPUT_SIZE`), on images of odd sizes
and must return the people's keypoints (P, K, 2)
in image pixels, their keypoint scores (P, K) and person scores, with the
dataset's meta information. The checkpoints are of the kinds users have:
converted original files (``tools/convert/higherhrnet_official_to_mmpose.py``,
meta with ``dataset_meta``), runner-style files (meta with ``dataset_meta``,
as saved by the stock train tools) and bare state-dict files (no meta: the
config's dataset meta is used). The weights are untrained (see
:func:`untrained_state_dict`); the toy learning checks show the predictions
are right (``tools/misc/train_toy_pose.py``).
"""

import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import MODELS

from _helpers import REPO_ROOT, run

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
POSE_CONFIGS = sorted(n for n in os.listdir(CONFIG_DIR) if n.startswith('higherhrnet_'))
INPUT_SIZE = 256  # the short side the test pipeline resizes to

SCRIPT = r"""
import sys
assert not [m for m in sys.modules if m.split('.')[0] in ('crossformer_mm', 'mmpose', 'torch')]
from mmpose.apis import MMPoseInferencer, inference_bottomup, init_model  # first of all
import json
import numpy as np

for job in json.loads(sys.argv[1]):
    rng = np.random.default_rng(0)
    model = init_model(job['config'], job['checkpoint'], device='cpu')
    h, w = job['sizes'][0]
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    inst = inference_bottomup(model, image)[0].pred_instances
    inside = (inst.keypoints > -w) & (inst.keypoints < 2 * max(h, w))
    result = dict(config=job['config'], dataset=model.dataset_meta['dataset_name'],
                  api_keypoints=list(inst.keypoints.shape),
                  api_scores=list(inst.keypoint_scores.shape),
                  api_people=len(inst.bbox_scores), api_inside=bool(np.all(inside)))
    h, w = job['sizes'][1]
    inferencer = MMPoseInferencer(pose2d=job['config'], pose2d_weights=job['checkpoint'],
                                  device='cpu')
    people = next(inferencer(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))['predictions'][0]
    first = people[0] if people else {}
    result.update(inferencer_dataset=inferencer.inferencer.model.dataset_meta['dataset_name'],
                  inferencer_people=len(people),
                  inferencer_keys=sorted(people[0]) if people else [],
                  inferencer_keypoints=(
                      [len(first['keypoints']), len(first['keypoints'][0])] if people else []),
                  inferencer_scores=len(people[0]['keypoint_scores']) if people else 0)
    print('RESULT ' + json.dumps(result), flush=True)
"""


def build(config: str):
    init_default_scope('mmpose')
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    cfg.model.backbone.init_cfg = None
    return cfg, MODELS.build(cfg.model)


def untrained_state_dict(model, num_keypoints: int) -> dict:
    """The model's own initial weights (``init_weights``: N(0, 0.001) head
    convolutions) with heatmap biases of 0.15: every joint map is about 0.15,
    above the 0.1 threshold, so the grouping finds people at the maps' tiny
    local maxima (cheaply: at most 30 candidates per joint)."""
    model.init_weights()
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}
    state_dict['head.final_layers.0.bias'][:num_keypoints] = 0.15
    state_dict['head.final_layers.1.bias'][:] = 0.15
    return state_dict


def small_input_config(config: str, root: str) -> str:
    """The config with a test input of :data:`INPUT_SIZE` (its 512 / 640 only cost time
    here), dumped whole to a file under ``root``."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    for loader in ('val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            if 'input_size' in step:
                step.input_size = INPUT_SIZE
    path = osp.join(root, config)
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def jobs(tmp_path_factory):
    """One (config, checkpoint, image sizes, joints) job per pose config, with
    the three checkpoint kinds in turn."""
    from crossformer_mm.pose.convert import convert_state_dict, dataset_meta_for

    root = tmp_path_factory.mktemp('inference_checkpoints')
    sizes = [[[123, 77], [61, 205]], [[300, 181], [97, 97]]]
    jobs = []
    for i, config in enumerate(POSE_CONFIGS):
        cfg, model = build(config)
        num_keypoints = cfg.model.head.num_keypoints
        state_dict = untrained_state_dict(model, num_keypoints)
        path = str(root / config.replace('.py', '.pth'))
        if config.startswith('higherhrnet_w32_'):  # converted from the original layout
            original = {k.split('.', 1)[1]: v for k, v in state_dict.items()}
            torch.save(
                {
                    'state_dict': convert_state_dict(original),
                    'meta': {'dataset_meta': dataset_meta_for(num_keypoints)},
                },
                path,
            )
        elif i % 2:  # runner-style: the dataset meta of the config's train set
            torch.save(
                {
                    'state_dict': state_dict,
                    'meta': {'dataset_meta': dataset_meta_from_config(cfg), 'epoch': 1},
                },
                path,
            )
        else:  # a bare state dict: the config's dataset meta is used
            torch.save(state_dict, path)
        jobs.append(
            dict(
                config=small_input_config(config, str(root)),
                checkpoint=path,
                sizes=sizes[i % 2],
                num_keypoints=num_keypoints,
                dataset=cfg.train_dataloader.dataset.type,
            )
        )
    return jobs


@pytest.mark.slow
def test_inference_apis_run_every_pose_config_in_a_fresh_interpreter(jobs):
    out = run([sys.executable, '-c', SCRIPT, json.dumps(jobs)], timeout=1800)
    results = {
        r['config']: r
        for r in (
            json.loads(line[len('RESULT ') :])
            for line in out.splitlines()
            if line.startswith('RESULT ')
        )
    }
    assert len(results) == len(jobs) == len(POSE_CONFIGS) == 7, out[-3000:]
    for job in jobs:
        result, k = results[job['config']], job['num_keypoints']
        dataset = 'crowdpose' if job['dataset'] == 'CrowdPoseDataset' else 'coco'
        assert result['dataset'] == result['inferencer_dataset'] == dataset, result
        people = result['api_people']
        assert people >= 1, result
        assert result['api_keypoints'] == [people, k, 2] and result['api_scores'] == [people, k]
        assert result['api_inside'], result
        assert result['inferencer_people'] >= 1, result
        assert result['inferencer_keypoints'] == [k, 2] and result['inferencer_scores'] == k
        assert {'keypoints', 'keypoint_scores', 'bbox', 'bbox_score'} <= set(
            result['inferencer_keys']
        )
