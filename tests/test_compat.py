"""The compatibility patches of crossformer_mm/compat.py: each is applied once,
only where its cause exists, makes the stack work, and the stock stack fails
without it (shown in fresh interpreters that do not import this package)."""
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.runner import CheckpointLoader, Runner
from torch import nn

from crossformer_mm import compat


def python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (1 thread); return the result."""
    import os
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **env)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env() -> dict:
    return dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                MASTER_PORT=str(free_port()))


NEEDS_CPU_PATCHES = compat.without_accelerator()


def test_patches_applied_here_are_exactly_those_whose_cause_exists():
    expected = set()
    if compat.mmengine_loads_weights_only_unaware():
        expected.add('safe_checkpoint_loading')
    if NEEDS_CPU_PATCHES:
        expected |= {'dist_init_without_cuda', 'ddp_without_cuda', 'sync_bn_without_cuda'}
    assert expected <= set(compat.APPLIED)
    # the toolbox patches are applied by crossformer_mm.pose / .classification
    assert set(compat.APPLIED) - expected <= {'mmpose_without_torchvision',
                                              'mmpretrain_without_torchvision'}


def test_patches_are_applied_once():
    patched = (CheckpointLoader._schemes[''], Runner.wrap_model)
    applied = dict(compat.APPLIED)
    compat.apply_patches()
    compat.apply_patches()
    assert (CheckpointLoader._schemes[''], Runner.wrap_model) == patched
    assert compat.APPLIED == applied


def test_no_patch_runs_on_a_machine_with_an_accelerator():
    """With an accelerator (mmengine's device 'cuda') and a current mmengine,
    importing the package leaves mmengine as it is."""
    result = python('''
        import mmengine, mmengine.device
        mmengine.device.get_device = lambda: 'cuda'
        mmengine.__version__ = '0.10.8'   # a release that passes weights_only itself
        from mmengine.runner import Runner, CheckpointLoader
        from mmengine.dist import utils as dist_utils
        stock = (Runner.wrap_model, CheckpointLoader._schemes[''], dist_utils._init_dist_pytorch)
        import crossformer_mm
        from crossformer_mm import compat
        assert (Runner.wrap_model, CheckpointLoader._schemes[''],
                dist_utils._init_dist_pytorch) == stock
        print('applied:', sorted(compat.APPLIED))
    ''')
    assert result.returncode == 0, result.stdout
    assert 'applied: []' in result.stdout


def test_each_applied_patch_is_logged_once():
    result = python('''
        import crossformer_mm
        import crossformer_mm  # a second import logs nothing more
        from crossformer_mm import compat
        compat.apply_patches()
    ''')
    assert result.returncode == 0, result.stdout
    for name in compat.APPLIED:
        if name not in ('mmpose_without_torchvision', 'mmpretrain_without_torchvision'):
            assert result.stdout.count(f'compat patch {name}:') == 1, result.stdout


# safe_checkpoint_loading ---------------------------------------------------
def mmengine_checkpoint(path: str) -> None:
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save(dict(state_dict={'w': torch.ones(2)},
                    message_hub=dict(log_scalars={'loss': buffer}),
                    meta=dict(seed=np.int64(3), lr=np.float64(0.1))), path)


def test_mmengine_checkpoints_load_and_fail_without_the_patch(tmp_path):
    path = str(tmp_path / 'mmengine_style.pth')
    mmengine_checkpoint(path)
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert checkpoint['message_hub']['log_scalars']['loss'].current() == 1.5
    assert checkpoint['meta']['seed'] == 3
    stock = python(f'''
        from mmengine.runner import CheckpointLoader
        CheckpointLoader.load_checkpoint({path!r})
    ''')
    assert compat.mmengine_loads_weights_only_unaware()
    assert stock.returncode != 0 and 'Weights only load failed' in stock.stdout, stock.stdout


# dist_init_without_cuda, ddp_without_cuda, sync_bn_without_cuda --------------
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
    for key, value in dist_env().items():
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


STOCK_GLOO = '''
        import torch, torch.distributed as dist
        from torch import nn
        from mmengine.config import Config
        from mmengine.runner import Runner
        dist.init_process_group('gloo')
        runner = Runner.__new__(Runner)  # the stock method on a distributed runner
        runner._distributed = True
        runner.cfg = Config(dict())
'''


def test_stock_dist_init_fails_without_cuda():
    assert NEEDS_CPU_PATCHES, 'this test documents the CPU-only stack'
    stock = python('''
        from mmengine.dist import init_dist
        init_dist('pytorch', backend='nccl')
    ''', **dist_env())
    assert stock.returncode != 0
    assert 'cuda' in stock.stdout.lower() or 'nccl' in stock.stdout.lower(), stock.stdout


def test_stock_ddp_wrapping_fails_without_cuda():
    assert NEEDS_CPU_PATCHES
    stock = python(STOCK_GLOO + '''
        model = nn.Linear(2, 2)
        from mmengine.model import BaseModel
        class M(BaseModel):
            def __init__(self):
                super().__init__(); self.fc = nn.Linear(2, 2)
            def forward(self, x, data_samples=None, mode='tensor'):
                return self.fc(x)
        runner.wrap_model(None, M())
    ''', **dist_env())
    assert stock.returncode != 0 and 'device_ids' in stock.stdout, stock.stdout


def test_stock_sync_bn_fails_without_cuda():
    assert NEEDS_CPU_PATCHES
    stock = python(STOCK_GLOO + '''
        from mmengine.runner.runner import convert_sync_batchnorm
        model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
        model.train()
        model(torch.randn(2, 3, 8, 8))
    ''', **dist_env())
    assert stock.returncode != 0 and 'SyncBatchNorm' in stock.stdout, stock.stdout


# mmpretrain_without_torchvision ----------------------------------------------
def test_mmpretrain_needs_the_patch_only_without_torchvision():
    """Stock: ``import mmpretrain.models`` / ``mmpretrain.datasets`` fail where
    torchvision cannot be imported. After ``crossformer_mm.classification``
    they import (and the apis), the torchvision names mmpretrain took are
    stand-ins that raise a clear error, and torchvision still cannot be
    imported by anybody else."""
    stock_models = python('import mmpretrain.models')
    stock_datasets = python('import mmpretrain.datasets')
    patched = python('''
        import sys
        import crossformer_mm.classification
        import mmpretrain.models, mmpretrain.datasets, mmpretrain.evaluation, mmpretrain.engine
        from mmpretrain.apis import ImageClassificationInferencer, get_model
        from crossformer_mm import compat
        print('applied:', sorted(compat.APPLIED))
        if 'mmpretrain_without_torchvision' in compat.APPLIED:
            assert not [m for m in sys.modules if m.split('.')[0] == 'torchvision'], 'stand-ins left'
            from mmpretrain.datasets.transforms import formatting
            from mmpretrain.registry import TRANSFORMS
            for use in (lambda: formatting.F.pil_to_tensor(None),
                        lambda: TRANSFORMS.build(dict(type='MAERandomResizedCrop', size=224))):
                try:
                    use()
                except compat.TorchvisionUnavailableError as error:
                    print('stand-in:', error)
            try:
                import torchvision
            except ImportError:
                print('torchvision still not importable')
    ''')
    assert patched.returncode == 0, patched.stdout
    if compat.torchvision_importable():
        assert stock_models.returncode == 0 and stock_datasets.returncode == 0
        assert 'mmpretrain_without_torchvision' not in patched.stdout
    else:
        for stock, importer in ((stock_models, 'visual_grounding_eval.py'),
                                (stock_datasets, 'formatting.py')):
            assert stock.returncode != 0, stock.stdout
            assert 'torchvision' in stock.stdout and importer in stock.stdout, stock.stdout
        assert 'mmpretrain_without_torchvision' in patched.stdout
        assert patched.stdout.count('stand-in: torchvision.') == 2, patched.stdout
        assert 'needs torchvision' in patched.stdout
        assert 'torchvision still not importable' in patched.stdout


# mmpose_without_torchvision --------------------------------------------------
def test_mmpose_visualization_needs_the_patch_only_without_torchvision():
    stock = python('import mmpose.visualization', CROSSFORMER_MM_NO_HOOK='1')  # no import hook
    patched = python('import crossformer_mm.pose, mmpose.visualization; '
                     'from crossformer_mm import compat; print(sorted(compat.APPLIED))')
    assert patched.returncode == 0, patched.stdout
    if compat.torchvision_importable():
        assert stock.returncode == 0, stock.stdout
        assert 'mmpose_without_torchvision' not in patched.stdout
    else:
        assert stock.returncode != 0 and 'torchvision' in stock.stdout, stock.stdout
        assert 'mmpose_without_torchvision' in patched.stdout


# the interpreter-start hook: mmpose.apis first, without torchvision ---------------
def _fake_torchvision(root, broken: bool) -> str:
    """A folder with an importable (or, like PyPI's CUDA wheels under a CPU torch,
    raising) ``torchvision`` that has what simcc_vis imports; for PYTHONPATH."""
    package = root / ('broken' if broken else 'working') / 'torchvision'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n" if broken else '')
    (package / 'transforms.py').write_text('class ToPILImage:\n    pass\n')
    return str(package.parent)


def test_hook_is_installed_at_start_and_imports_nothing_heavy():
    """The .pth of the installed package puts the finder on sys.meta_path; at
    start no torch, mmengine, mmpose or crossformer_mm module is imported."""
    out = python('''
        import sys
        heavy = sorted(m for m in sys.modules
                       if m.split('.')[0] in ('torch', 'mmengine', 'mmcv', 'mmpose', 'numpy', 'crossformer_mm'))
        print('HEAVY', heavy)
        print('FINDERS', [type(f).__name__ for f in sys.meta_path])
    ''')
    assert out.returncode == 0, out.stdout
    assert 'MMPoseWithoutTorchvisionFinder' in out.stdout, (
        'the import hook is not installed: run tools/install.sh (it writes '
        'crossformer_mm-hook.pth into site-packages)\n' + out.stdout)
    assert 'HEAVY []' in out.stdout, out.stdout


@pytest.mark.slow
def test_mmpose_apis_import_first_without_torchvision():
    """A fresh interpreter imports mmpose.apis before anything of this package:
    where torchvision cannot be imported the hook loads compat's stand-in (and
    without the hook the same import fails)."""
    code = '''
        from mmpose.apis import MMPoseInferencer, inference_bottomup, init_model
        import sys
        print('SIMCC', sys.modules['mmpose.visualization.simcc_vis'].__spec__.origin)
    '''
    hooked = python(code)
    unhooked = python(code, CROSSFORMER_MM_NO_HOOK='1')
    if compat.torchvision_importable():
        assert hooked.returncode == unhooked.returncode == 0, hooked.stdout
        assert 'simcc_vis.py' in hooked.stdout
    else:
        assert hooked.returncode == 0, hooked.stdout
        assert 'SIMCC crossformer_mm.compat.simcc_vis_stand_in' in hooked.stdout
        assert 'compat patch mmpose_without_torchvision' in hooked.stdout
        assert unhooked.returncode != 0 and 'torchvision' in unhooked.stdout, unhooked.stdout


@pytest.mark.slow
@pytest.mark.parametrize('broken', [False, True])
def test_hook_acts_only_where_torchvision_cannot_be_imported(tmp_path, broken):
    """With an importable torchvision the real simcc_vis loads and nothing of this
    package is imported; with one that raises at import the stand-in loads."""
    out = python('''
        import sys
        import mmpose.visualization
        print('SIMCC', sys.modules['mmpose.visualization.simcc_vis'].__spec__.origin)
        print('CFMM', 'crossformer_mm' in sys.modules)
    ''', PYTHONPATH=_fake_torchvision(tmp_path, broken))
    assert out.returncode == 0, out.stdout
    if broken:
        assert 'SIMCC crossformer_mm.compat.simcc_vis_stand_in' in out.stdout, out.stdout
    else:
        assert 'mmpose/visualization/simcc_vis.py' in out.stdout, out.stdout
        assert 'CFMM False' in out.stdout, out.stdout
