"""Runtime fixes that the stock OpenMMLab tools need on this stack.

Stock scripts (mmdet/mmseg/mmpose ``tools/train.py``, ``tools/test.py``,
``mim train``) cannot be edited, but every one of them imports this package
through the config's ``custom_imports`` in every process, before the
:class:`~mmengine.runner.Runner` is built. :func:`apply_runtime_fixes` runs at
that import and patches three things, once:

1. **Trusted local checkpoints under torch>=2.6.** ``torch.load`` defaults to
   ``weights_only=True``, and mmengine 0.10.7 calls it without the argument,
   so its own checkpoints (``HistoryBuffer`` in the message hub, numpy
   scalars) no longer load: ``--resume``, ``load_from`` and ``tools/test.py``
   fail. mmengine's local loader (the ``''`` scheme of
   :class:`~mmengine.runner.CheckpointLoader`) is re-registered with
   ``weights_only=False``, i.e. the behaviour of torch<2.6. Checkpoints are
   pickles: load only files you trust, as before.
2. **Distributed runs without an accelerator.** mmengine's
   ``_init_dist_pytorch``/``_init_dist_slurm`` call ``torch.cuda.set_device``
   (an error on CPU torch) and configs ask for ``nccl``. Without CUDA the
   ``nccl`` backend becomes ``gloo`` and ``set_device`` is skipped; the
   data-parallel wrapper gets ``device_ids=None`` (DDP refuses device ids for
   CPU modules).
3. **SyncBN without an accelerator.** SyncBN cannot run on CPU tensors in a
   process group and DDP refuses it on CPU modules. In distributed CPU runs
   SyncBN layers are reverted to BatchNorm (per-process statistics) and
   ``cfg.sync_bn`` is ignored, with a warning; single-process runs are
   already reverted by mmengine itself.

With CUDA (or another accelerator) nothing of 2. and 3. changes behaviour.
"""
import contextlib
import functools
import logging
import os.path as osp
from typing import Callable, Iterator, Optional

import torch
from mmengine.device import get_device
from mmengine.dist import utils as dist_utils
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner import runner as runner_module
from mmengine.utils import digit_version
from torch import nn
from torch.nn.parallel import DistributedDataParallel

_PATCHED = '_crossformer_mm_patched'


def _mark(fn: Callable) -> Callable:
    setattr(fn, _PATCHED, True)
    return fn


def _is_patched(fn: Callable) -> bool:
    return getattr(fn, _PATCHED, False)


def _without_accelerator() -> bool:
    """True on a machine where mmengine would run on the CPU."""
    return get_device() == 'cpu'


def _warn(msg: str) -> None:
    print_log(f'[crossformer_mm] {msg}', logger='current', level=logging.WARNING)


# 1. trusted local checkpoints --------------------------------------------
def load_from_local(filename: str, map_location=None):
    """mmengine's local checkpoint loader, with ``weights_only=False``.

    Named like mmengine's loader so its log line still reads "Loads
    checkpoint by local backend".
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def _patch_local_checkpoint_loader() -> None:
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return  # torch.load still defaults to weights_only=False
    if _is_patched(CheckpointLoader._schemes.get('', load_from_local)):
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=_mark(load_from_local), force=True)


# 2. distributed initialisation without CUDA --------------------------------
@contextlib.contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op for the duration of the block."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def _cpu_capable(init_fn: Callable) -> Callable:
    """Wrap an mmengine ``_init_dist_*`` function so it works without CUDA."""

    @functools.wraps(init_fn)
    def init_dist(backend: str, *args, **kwargs) -> None:
        if not _without_accelerator():
            return init_fn(backend, *args, **kwargs)
        if backend == 'nccl':
            _warn("no CUDA device: using the 'gloo' process-group backend "
                  "instead of 'nccl'")
            backend = 'gloo'
        with _cuda_set_device_skipped():
            return init_fn(backend, *args, **kwargs)

    return _mark(init_dist)


def _patch_dist_init() -> None:
    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        init_fn = getattr(dist_utils, name)
        if not _is_patched(init_fn):
            setattr(dist_utils, name, _cpu_capable(init_fn))


# 3. model wrapping (DDP device ids, SyncBN) without CUDA --------------------
def _count_sync_bn(model: nn.Module) -> int:
    sync_bn_types = [nn.SyncBatchNorm]
    try:
        from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
        sync_bn_types.append(MMCVSyncBatchNorm)
    except ImportError:
        pass
    return sum(isinstance(m, tuple(sync_bn_types)) for m in model.modules())


def _convert_sync_batchnorm_if_possible(
        convert_fn: Callable) -> Callable:
    """Wrap ``convert_sync_batchnorm`` (``cfg.sync_bn``) to skip on CPU."""

    @functools.wraps(convert_fn)
    def convert_sync_batchnorm(module: nn.Module, *args, **kwargs):
        if _without_accelerator():
            _warn('no CUDA device: cfg.sync_bn is ignored, BatchNorm layers '
                  'keep per-process statistics')
            return module
        return convert_fn(module, *args, **kwargs)

    return _mark(convert_sync_batchnorm)


def _cpu_capable_wrap_model(wrap_model: Callable) -> Callable:
    """Wrap ``Runner.wrap_model`` for distributed runs without CUDA."""

    @functools.wraps(wrap_model)
    def cpu_wrap_model(self: Runner, model_wrapper_cfg: Optional[dict],
                       model: nn.Module) -> nn.Module:
        if (not self.distributed or not _without_accelerator()
                or is_model_wrapper(model)):
            return wrap_model(self, model_wrapper_cfg, model)
        num_sync_bn = _count_sync_bn(model)
        if num_sync_bn:
            _warn(f'no CUDA device: SyncBN cannot run, {num_sync_bn} SyncBN '
                  'layers reverted to BatchNorm (per-process statistics)')
            model = revert_sync_batchnorm(model)
        if model_wrapper_cfg is None:  # mmengine's default wrapper, as a cfg
            model_wrapper_cfg = dict(
                type='MMDistributedDataParallel',
                broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                    False))
        wrapper_cfg = dict(model_wrapper_cfg)
        wrapper_cls = MODEL_WRAPPERS.get(
            wrapper_cfg.setdefault('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_cls, type) and issubclass(
                wrapper_cls, DistributedDataParallel):
            wrapper_cfg['device_ids'] = None  # CPU modules take no device ids
        return wrap_model(self, wrapper_cfg, model)

    return _mark(cpu_wrap_model)


def _patch_wrap_model() -> None:
    if not _is_patched(Runner.wrap_model):
        Runner.wrap_model = _cpu_capable_wrap_model(Runner.wrap_model)
    if not _is_patched(runner_module.convert_sync_batchnorm):
        runner_module.convert_sync_batchnorm = \
            _convert_sync_batchnorm_if_possible(
                runner_module.convert_sync_batchnorm)


def apply_runtime_fixes() -> None:
    """Apply the fixes of this module; idempotent (each patch happens once)."""
    _patch_local_checkpoint_loader()
    _patch_dist_init()
    _patch_wrap_model()
