"""The compatibility patches of crossformer_mm/compat.py: each is applied once,
only where its cause exists, makes the stack work, and the stock stack fails
without it (shown in fresh interpreters that do not import this package).
The stack is whole otherwise: mmpose and mmpretrain import the real torchvision
that matches torch, and nothing of this package runs at interpreter start."""

import glob
import importlib.metadata
import os.path as osp
import site
import socket
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.runner import CheckpointLoader, Runner
from packaging.requirements import Requirement
from torch import nn

from crossformer_mm import compat


def python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (1 thread); return the result."""
    import os

    full_env = dict(os.environ, OMP_NUM_THREADS='1', **env)
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env() -> dict:
    return dict(
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(free_port()),
    )


NEEDS_CPU_PATCHES = compat.without_accelerator()


def test_patches_applied_here_are_exactly_those_whose_cause_exists():
    expected = set()
    if (
        compat.mmengine_unpickles_arbitrary_globals()
        or compat.mmengine_loads_weights_only_unaware()
    ):
        expected.add('safe_checkpoint_loading')
    if NEEDS_CPU_PATCHES:
        expected |= {'dist_init_without_cuda', 'ddp_without_cuda', 'sync_bn_without_cuda'}
    assert set(compat.APPLIED) == expected


def test_patches_are_applied_once():
    patched = (CheckpointLoader._schemes[''], Runner.wrap_model)
    applied = dict(compat.APPLIED)
    compat.apply_patches()
    compat.apply_patches()
    assert (CheckpointLoader._schemes[''], Runner.wrap_model) == patched
    assert compat.APPLIED == applied


@pytest.mark.slow
def test_no_patch_runs_on_a_machine_with_an_accelerator():
    """With an accelerator (mmengine's device 'cuda') importing the package leaves
    mmengine's runner and launchers as they are; only the checkpoint loader may be
    patched, and only where the stock loader is unsafe (decided by what it does:
    tests/test_stacks.py)."""
    result = python("""
        import mmengine, mmengine.device
        mmengine.device.get_device = lambda: 'cuda'
        from mmengine.runner import Runner
        from mmengine.runner import runner as runner_module
        from mmengine.dist import utils as dist_utils
        stock = (Runner.wrap_model, dist_utils._init_dist_pytorch,
                 dist_utils._init_dist_slurm, runner_module.convert_sync_batchnorm)
        import crossformer_mm
        from crossformer_mm import compat
        assert (Runner.wrap_model, dist_utils._init_dist_pytorch,
                dist_utils._init_dist_slurm, runner_module.convert_sync_batchnorm) == stock
        unsafe = compat.mmengine_unpickles_arbitrary_globals()
        print('applied:', sorted(compat.APPLIED), 'unsafe stock loader:', unsafe)
    """)
    assert result.returncode == 0, result.stdout
    assert (
        "applied: ['safe_checkpoint_loading'] unsafe stock loader: True" in result.stdout
        or 'applied: [] unsafe stock loader: False' in result.stdout
    ), result.stdout


@pytest.mark.slow
def test_each_applied_patch_is_logged_once():
    result = python("""
        import crossformer_mm
        import crossformer_mm  # a second import logs nothing more
        from crossformer_mm import compat
        compat.apply_patches()
    """)
    assert result.returncode == 0, result.stdout
    for name in compat.APPLIED:
        assert result.stdout.count(f'compat patch {name}:') == 1, result.stdout
    assert result.stdout.count('compat patch') == len(compat.APPLIED), result.stdout


# safe_checkpoint_loading ---------------------------------------------------
def mmengine_checkpoint(path: str) -> None:
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save(
        dict(
            state_dict={'w': torch.ones(2)},
            message_hub=dict(log_scalars={'loss': buffer}),
            meta=dict(seed=np.int64(3), lr=np.float64(0.1)),
        ),
        path,
    )


def test_mmengine_checkpoints_load(tmp_path):
    path = str(tmp_path / 'mmengine_style.pth')
    mmengine_checkpoint(path)
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert checkpoint['message_hub']['log_scalars']['loss'].current() == 1.5
    assert checkpoint['meta']['seed'] == 3


@pytest.mark.slow
def test_stock_mmengine_loading_of_runner_files_is_what_the_probe_found(tmp_path):
    """mmengine's own loader (a fresh interpreter, crossformer_mm not imported) on a runner
    file does what the probe at import found: mmengine 0.10.7 with torch >= 2.6 fails
    (``weights_only=True``, no allow-list), onedl-mmengine retries with
    ``weights_only=False`` and loads (unsafely: the patch replaces it on both stacks)."""
    path = str(tmp_path / 'mmengine_style.pth')
    mmengine_checkpoint(path)
    stock = python(f"""
        from mmengine.runner import CheckpointLoader
        checkpoint = CheckpointLoader.load_checkpoint({path!r})
        print('LOADED', checkpoint['message_hub']['log_scalars']['loss'].current())
    """)
    if compat.mmengine_loads_weights_only_unaware():
        assert stock.returncode != 0 and 'Weights only load failed' in stock.stdout, stock.stdout
    else:
        assert stock.returncode == 0 and 'LOADED 1.5' in stock.stdout, stock.stdout
    assert 'safe_checkpoint_loading' in compat.APPLIED


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
        cfg=dict(sync_bn='torch'),
    )
    assert torch_dist.get_backend() == ('nccl' if cuda else 'gloo')
    assert isinstance(runner.model, MMDistributedDataParallel)
    assert runner.model.device_ids == ([0] if cuda else None)
    assert (type(runner.model.module.bn) is nn.SyncBatchNorm) == cuda
    device = 'cuda' if cuda else 'cpu'
    out = runner.model(torch.randn(2, 3, 8, 8, device=device))
    assert out.shape == (2, 4, 6, 6)
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    for message in ('1 SyncBN layers reverted to BatchNorm', 'cfg.sync_bn is ignored'):
        assert (message in log) != cuda, message


STOCK_GLOO = """
        import torch, torch.distributed as dist
        from torch import nn
        from mmengine.config import Config
        from mmengine.runner import Runner
        dist.init_process_group('gloo')
        runner = Runner.__new__(Runner)  # the stock method on a distributed runner
        runner._distributed = True
        runner.cfg = Config(dict())
"""


@pytest.mark.slow
def test_stock_dist_init_fails_without_cuda():
    assert NEEDS_CPU_PATCHES, 'this test documents the CPU-only stack'
    stock = python(
        """
        from mmengine.dist import init_dist
        init_dist('pytorch', backend='nccl')
    """,
        **dist_env(),
    )
    assert stock.returncode != 0
    assert 'cuda' in stock.stdout.lower() or 'nccl' in stock.stdout.lower(), stock.stdout


@pytest.mark.slow
def test_stock_ddp_wrapping_fails_without_cuda():
    assert NEEDS_CPU_PATCHES
    stock = python(
        STOCK_GLOO
        + """
        model = nn.Linear(2, 2)
        from mmengine.model import BaseModel
        class M(BaseModel):
            def __init__(self):
                super().__init__(); self.fc = nn.Linear(2, 2)
            def forward(self, x, data_samples=None, mode='tensor'):
                return self.fc(x)
        runner.wrap_model(None, M())
    """,
        **dist_env(),
    )
    assert stock.returncode != 0 and 'device_ids' in stock.stdout, stock.stdout


@pytest.mark.slow
def test_stock_sync_bn_fails_without_cuda():
    assert NEEDS_CPU_PATCHES
    stock = python(
        STOCK_GLOO
        + """
        from mmengine.runner.runner import convert_sync_batchnorm
        model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
        model.train()
        model(torch.randn(2, 3, 8, 8))
    """,
        **dist_env(),
    )
    assert stock.returncode != 0 and 'SyncBatchNorm' in stock.stdout, stock.stdout


# the real torchvision, nothing at interpreter start -------------------------------
def test_torchvision_is_the_build_for_this_torch():
    """torchvision's own requirement names the installed torch, and its compiled
    ops run (a build for another torch raises at import or in ``ops.nms``)."""
    import torchvision

    requires = [Requirement(r) for r in importlib.metadata.requires('torchvision') or []]
    torch_req = [r for r in requires if r.name == 'torch']
    assert torch_req, f'torchvision {torchvision.__version__} requires no torch: {requires}'
    assert torch_req[0].specifier.contains(torch.__version__.split('+')[0]), (
        f'torchvision {torchvision.__version__} is built for {torch_req[0]}, torch is '
        f'{torch.__version__}: run tools/install.sh'
    )
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.1], [5.0, 5.0, 6.0, 6.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_nothing_of_the_package_runs_at_interpreter_start():
    """No module, finder or .pth of crossformer_mm in a fresh interpreter."""
    out = python("""
        import sys
        print('MODULES', sorted(m for m in sys.modules if 'crossformer' in m))
        print('FINDERS', [f for f in sys.meta_path if 'crossformer' in repr(f)])
    """)
    assert out.returncode == 0, out.stdout
    assert 'MODULES []' in out.stdout and 'FINDERS []' in out.stdout, out.stdout


def site_dirs() -> list:
    dirs = set(site.getsitepackages() + [site.getusersitepackages()])
    dirs |= {sysconfig.get_paths()[key] for key in ('purelib', 'platlib')}
    return sorted(d for d in dirs if osp.isdir(d))


def test_no_crossformer_pth_file_in_site_packages():
    """A ``.pth`` file runs at the start of every interpreter of the environment."""
    assert sysconfig.get_paths()['purelib'] in site_dirs()
    found = [f for d in site_dirs() for f in glob.glob(osp.join(d, '*crossformer*.pth'))]
    assert not found, f'{found} run code at interpreter start: rerun tools/install.sh'


@pytest.mark.slow
def test_mmpose_apis_first_in_a_fresh_interpreter():
    """``from mmpose.apis import MMPoseInferencer`` as the first line imports the
    real torchvision (mmpose.visualization.simcc_vis needs it) and nothing of
    this package."""
    out = python("""
        from mmpose.apis import MMPoseInferencer, inference_bottomup, init_model
        import sys
        print('SIMCC', sys.modules['mmpose.visualization.simcc_vis'].__file__)
        print('TORCHVISION', sys.modules['torchvision'].__file__)
        print('CFMM', sorted(m for m in sys.modules if 'crossformer' in m))
    """)
    assert out.returncode == 0, out.stdout
    lines = dict(
        line.split(' ', 1)
        for line in out.stdout.splitlines()
        if line.split(' ')[0] in ('SIMCC', 'TORCHVISION', 'CFMM')
    )
    assert lines['SIMCC'].endswith(osp.join('mmpose', 'visualization', 'simcc_vis.py'))
    assert lines['TORCHVISION'].endswith(osp.join('torchvision', '__init__.py'))
    assert osp.isfile(lines['TORCHVISION']), out.stdout
    assert lines['CFMM'] == '[]', out.stdout


@pytest.mark.slow
def test_mmpretrain_and_the_classification_package_use_the_real_torchvision():
    """``crossformer_mm.classification`` and mmpretrain import the real
    torchvision; what mmpretrain takes from it works (its ``torchvision/*``
    transforms are registered, PIL images are packed, box IoUs computed)."""
    out = python("""
        import crossformer_mm.classification
        import mmpretrain.datasets, mmpretrain.evaluation, mmpretrain.models
        import sys
        import numpy as np
        import torch
        import torchvision
        from PIL import Image
        from mmpretrain.datasets.transforms import formatting
        from mmpretrain.models.utils import box_utils
        from mmpretrain.registry import TRANSFORMS
        print('TORCHVISION', torchvision.__file__)
        assert formatting.F is sys.modules['torchvision.transforms.functional']
        assert box_utils.boxes is sys.modules['torchvision.ops.boxes']
        assert 'torchvision/RandomResizedCrop' in TRANSFORMS.module_dict
        image = Image.fromarray(np.zeros((4, 6, 3), np.uint8))
        packed = TRANSFORMS.build(dict(type='PackInputs'))(dict(img=image))
        print('PACKED', tuple(packed['inputs'].shape))
        iou = box_utils.box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[0., 0., 2., 4.]]))
        print('IOU', float(iou))
    """)
    assert out.returncode == 0, out.stdout
    tv_file = out.stdout.split('TORCHVISION ', 1)[1].split('\n')[0]
    assert osp.isfile(tv_file) and tv_file.endswith(osp.join('torchvision', '__init__.py'))
    assert 'PACKED (3, 4, 6)' in out.stdout, out.stdout
    assert 'IOU 0.5' in out.stdout, out.stdout
