"""Runtime fixes (crossformer_mm/utils/runtime.py) and the CLI plumbing of
tools/train.py / tools/test.py (crossformer_mm/utils/cli.py)."""
import os.path as osp
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.runner import CheckpointLoader, Runner
from torch import nn

from crossformer_mm.utils import cli, runtime

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config(name: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', name))


def test_local_loader_reads_mmengine_checkpoints(tmp_path):
    path = str(tmp_path / 'mmengine_style.pth')
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save(
        dict(
            state_dict={'w': torch.ones(2)},
            message_hub=dict(log_scalars={'loss': buffer}),
            meta=dict(seed=np.int64(3), lr=np.float64(0.1))), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch>=2.6 default: weights_only=True
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert checkpoint['message_hub']['log_scalars']['loss'].current() == 1.5
    assert checkpoint['meta']['seed'] == 3
    with pytest.raises(FileNotFoundError, match='can not be found'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))


def test_fixes_are_applied_once():
    patched = (CheckpointLoader._schemes[''], Runner.wrap_model,
               runtime.dist_utils._init_dist_pytorch)
    runtime.apply_runtime_fixes()
    runtime.apply_runtime_fixes()
    assert (CheckpointLoader._schemes[''], Runner.wrap_model,
            runtime.dist_utils._init_dist_pytorch) == patched
    assert Runner.wrap_model.__wrapped__.__qualname__ == 'Runner.wrap_model'


class SyncBNModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.SyncBatchNorm(4)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.bn(self.conv(inputs))


@pytest.fixture
def single_process_env(monkeypatch):
    """Environment of a 1-process torchrun launch on a free port."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(
            RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_distributed_runner_without_cuda(single_process_env, tmp_path):
    """nccl -> gloo, DDP without device ids, SyncBN reverted; unchanged
    (nccl, device ids, SyncBN kept) where CUDA exists."""
    cuda = torch.cuda.is_available()
    runner = Runner(
        model=SyncBNModel(),
        work_dir=str(tmp_path),
        launcher='pytorch',
        env_cfg=dict(dist_cfg=dict(backend='nccl')),
        cfg=dict(sync_bn='torch'))
    assert torch_dist.get_backend() == ('nccl' if cuda else 'gloo')
    assert isinstance(runner.model, MMDistributedDataParallel)
    assert runner.model.device_ids == ([0] if cuda else None)
    assert (type(runner.model.module.bn) is nn.SyncBatchNorm) == cuda
    device = 'cuda' if cuda else 'cpu'
    out = runner.model(torch.randn(2, 3, 8, 8, device=device))
    assert out.shape == (2, 4, 6, 6)
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    for message in ('1 SyncBN layers reverted to BatchNorm',
                    'cfg.sync_bn is ignored'):
        assert (message in log) != cuda, message


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


def test_toolbox_of_rejects_other_scopes():
    with pytest.raises(ValueError, match="default_scope='mmpretrain'"):
        cli.toolbox_of(Config(dict(default_scope='mmpretrain')))
