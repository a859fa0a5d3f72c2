"""Compatibility patches for the stock OpenMMLab stack, in one place.

Stock scripts (mmdet / mmseg / mmpose / mmpretrain ``tools/train.py``,
``tools/test.py``, ``mim train``) cannot be edited, but each of them imports
this package through the config's ``custom_imports`` in every process, before
the :class:`~mmengine.runner.Runner` is built. Each patch below is a named
function that fixes one trap of the stack; :func:`apply_patches` (called when
``crossformer_mm`` is imported) applies a patch only where its cause exists,
and logs it once:

=================================  ============================================
patch                              applied when
=================================  ============================================
:func:`safe_checkpoint_loading`    torch >= 2.6 and mmengine <= 0.10.7 (it calls
                                   ``torch.load`` without ``weights_only``)
:func:`dist_init_without_cuda`     no accelerator (mmengine would run on CPU)
:func:`ddp_without_cuda`           no accelerator
:func:`sync_bn_without_cuda`       no accelerator
=================================  ============================================

On a CUDA machine with a current mmengine none of them runs.
``tests/test_compat.py`` shows the stock stack failing without each.
"""
import contextlib
import functools
import logging
from typing import Callable, Dict, Iterator, Optional

import mmengine
import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.utils import digit_version
from torch import nn

#: Names of the patches applied in this process (each is applied and logged once).
APPLIED: Dict[str, str] = {}


def _applied(name: str, reason: str) -> bool:
    """Record that patch ``name`` is applied; False if it already was."""
    if name in APPLIED:
        return False
    APPLIED[name] = reason
    print_log(f'[crossformer_mm] compat patch {name}: {reason}', logger='current',
              level=logging.INFO)
    return True


def _replace_once(owner: object, name: str, make_wrapper: Callable[[Callable], Callable]) -> bool:
    """Replace ``owner.name`` by ``make_wrapper(original)``, once; False if it
    was already replaced."""
    original = getattr(owner, name)
    if getattr(original, '__crossformer_mm_patch__', False):
        return False
    wrapper = functools.wraps(original)(make_wrapper(original))
    wrapper.__crossformer_mm_patch__ = True
    setattr(owner, name, wrapper)
    return True


def _warn(msg: str) -> None:
    print_log(f'[crossformer_mm] {msg}', logger='current', level=logging.WARNING)


def without_accelerator() -> bool:
    """True on a machine where mmengine would run on the CPU."""
    return get_device() == 'cpu'


# checkpoints ------------------------------------------------------------------
def mmengine_loads_weights_only_unaware() -> bool:
    """mmengine <= 0.10.7 calls ``torch.load`` without ``weights_only``, which
    torch >= 2.6 makes ``True``: its own checkpoints (message hub, numpy
    scalars) then fail to load in ``--resume``, ``load_from`` and ``test.py``."""
    return (digit_version(torch.__version__) >= digit_version('2.6.0')
            and digit_version(mmengine.__version__) <= digit_version('0.10.7'))


def safe_checkpoint_loading() -> None:
    """Make mmengine's checkpoint loaders load with ``weights_only=True`` and the
    allow-list of :mod:`crossformer_mm.utils.safe_load`, with errors that name
    the file: the local ('' scheme) loader, and the ``load_url`` that its http(s),
    ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` loaders call (it is
    ``torch.hub.load_state_dict_from_url``, which unpickles with
    ``weights_only=False``)."""
    if not mmengine_loads_weights_only_unaware():
        return
    from mmengine.runner import CheckpointLoader
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from .utils.safe_load import load_from_local, load_url
    if CheckpointLoader._schemes.get('') is load_from_local:
        return
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    mmengine_checkpoint.load_url = load_url
    _applied('safe_checkpoint_loading',
             f'mmengine {mmengine.__version__} loads checkpoints (files and URLs) with torch '
             f'{torch.__version__} through the safe allow-list loader')


# distributed runs without an accelerator ---------------------------------------
@contextlib.contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op for the duration of the block."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def _cpu_capable_init(init_fn: Callable) -> Callable:

    def init_dist(backend: str, *args, **kwargs) -> None:
        if backend == 'nccl':
            _warn("no CUDA device: using the 'gloo' process-group backend instead of 'nccl'")
            backend = 'gloo'
        with _cuda_set_device_skipped():
            return init_fn(backend, *args, **kwargs)

    return init_dist


def dist_init_without_cuda() -> None:
    """mmengine's ``_init_dist_pytorch`` / ``_init_dist_slurm`` call
    ``torch.cuda.set_device`` (an error without CUDA) and configs ask for
    ``nccl``: use ``gloo`` and skip ``set_device``."""
    if not without_accelerator():
        return
    from mmengine.dist import utils as dist_utils
    replaced = [_replace_once(dist_utils, name, _cpu_capable_init)
                for name in ('_init_dist_pytorch', '_init_dist_slurm')]
    if any(replaced):
        _applied('dist_init_without_cuda', 'no accelerator: gloo backend, no cuda.set_device')


def _count_sync_bn(model: nn.Module) -> int:
    sync_bn_types = [nn.SyncBatchNorm]
    with contextlib.suppress(ImportError):
        from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
        sync_bn_types.append(MMCVSyncBatchNorm)
    return sum(isinstance(m, tuple(sync_bn_types)) for m in model.modules())


def ddp_without_cuda() -> None:
    """DDP refuses device ids for CPU modules and SyncBN on CPU tensors: in
    distributed runs without an accelerator ``Runner.wrap_model`` gets
    ``device_ids=None`` and SyncBN layers are reverted to BatchNorm."""
    if not without_accelerator():
        return
    from mmengine.model import is_model_wrapper, revert_sync_batchnorm
    from mmengine.registry import MODEL_WRAPPERS
    from mmengine.runner import Runner
    from torch.nn.parallel import DistributedDataParallel

    def cpu_capable(wrap_model: Callable) -> Callable:

        def cpu_wrap_model(self: Runner, model_wrapper_cfg: Optional[dict],
                           model: nn.Module) -> nn.Module:
            if not self.distributed or is_model_wrapper(model):
                return wrap_model(self, model_wrapper_cfg, model)
            num_sync_bn = _count_sync_bn(model)
            if num_sync_bn:
                _warn(f'no CUDA device: SyncBN cannot run, {num_sync_bn} SyncBN layers '
                      'reverted to BatchNorm (per-process statistics)')
                model = revert_sync_batchnorm(model)
            if model_wrapper_cfg is None:  # mmengine's default wrapper, as a cfg
                model_wrapper_cfg = dict(
                    type='MMDistributedDataParallel', broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get('find_unused_parameters', False))
            wrapper_cfg = dict(model_wrapper_cfg)
            wrapper_cls = MODEL_WRAPPERS.get(
                wrapper_cfg.setdefault('type', 'MMDistributedDataParallel'))
            if isinstance(wrapper_cls, type) and issubclass(wrapper_cls, DistributedDataParallel):
                wrapper_cfg['device_ids'] = None  # CPU modules take no device ids
            return wrap_model(self, wrapper_cfg, model)

        return cpu_wrap_model

    if _replace_once(Runner, 'wrap_model', cpu_capable):
        _applied('ddp_without_cuda', 'no accelerator: DDP without device ids, SyncBN reverted')


def sync_bn_without_cuda() -> None:
    """``cfg.sync_bn`` makes the Runner convert BatchNorm to SyncBN, which
    cannot run on CPU: without an accelerator the conversion is skipped."""
    if not without_accelerator():
        return
    from mmengine.runner import runner as runner_module

    def skipped(convert: Callable) -> Callable:

        def convert_sync_batchnorm(module: nn.Module, *args, **kwargs) -> nn.Module:
            _warn('no CUDA device: cfg.sync_bn is ignored, BatchNorm layers keep '
                  'per-process statistics')
            return module

        return convert_sync_batchnorm

    if _replace_once(runner_module, 'convert_sync_batchnorm', skipped):
        _applied('sync_bn_without_cuda', 'no accelerator: cfg.sync_bn ignored')


def apply_patches() -> None:
    """Apply every patch whose cause exists here (idempotent)."""
    safe_checkpoint_loading()
    dist_init_without_cuda()
    ddp_without_cuda()
    sync_bn_without_cuda()
