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
:func:`safe_checkpoint_loading`    mmengine's own loaders, tried on small files
                                   at import, unpickle arbitrary globals
                                   (onedl-mmengine falls back to
                                   ``weights_only=False``; URLs everywhere) or fail
                                   on mmengine's runner files (mmengine 0.10.7
                                   with torch >= 2.6)
:func:`dist_init_without_cuda`     no accelerator (mmengine would run on CPU)
:func:`ddp_without_cuda`           no accelerator
:func:`sync_bn_without_cuda`       no accelerator
=================================  ============================================

On a CUDA machine whose mmengine loaders load safely none of them runs (no
released mmengine does: its URL loader is ``torch.hub``'s, ``weights_only=False``).
``tests/test_compat.py`` shows the stock stack failing without each.
"""

import contextlib
import functools
import logging
import pickle
from typing import Callable, Dict, Iterator, Optional

import mmengine
import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from torch import nn

#: Names of the patches applied in this process (each is applied and logged once).
APPLIED: Dict[str, str] = {}


def _applied(name: str, reason: str) -> bool:
    """Record that patch ``name`` is applied; False if it already was."""
    if name in APPLIED:
        return False
    APPLIED[name] = reason
    print_log(
        f'[crossformer_mm] compat patch {name}: {reason}', logger='current', level=logging.INFO
    )
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
class _UnpicklingProbe:
    """A harmless class outside every allow-list: a loader that returns an instance
    of it from a file unpickles arbitrary globals, so it would as well call
    ``os.system`` for a pickle payload."""

    def __reduce__(self) -> tuple:
        return (_UnpicklingProbe, ())


#: mmengine's own loaders, as found before :func:`safe_checkpoint_loading` replaced them.
_STOCK_LOADERS: Dict[str, Callable] = {}


def _stock_loaders() -> Dict[str, Callable]:
    if not _STOCK_LOADERS:
        from mmengine.runner import CheckpointLoader
        from mmengine.runner import checkpoint as mmengine_checkpoint

        _STOCK_LOADERS.update(local=CheckpointLoader._schemes[''], url=mmengine_checkpoint.load_url)
    return _STOCK_LOADERS


def _outcome(load: Callable[[], object], expected: Callable[[object], bool]) -> str:
    """'loaded' (``expected`` holds for the result), 'refused' (a weights-only
    refusal), or 'failed: ...' for anything else."""
    try:
        result = load()
    except pickle.UnpicklingError as error:
        return 'refused' if 'weights' in str(error).lower() else f'failed: {error}'[:200]
    except Exception as error:  # noqa: B902 (any failure is reported, not raised)
        return f'failed: {type(error).__name__}: {error}'[:200]
    return 'loaded' if expected(result) else 'failed: unexpected content'


@functools.cache
def stock_checkpoint_loading() -> Dict[str, str]:
    """What mmengine's own loaders do here, found by trying them on two small files in
    a temporary folder (not by version numbers):

    - ``'local_any_global'``: the local ('' scheme) loader on a file that pickles a
      harmless class of this module; ``'loaded'`` means it unpickles arbitrary
      globals (mmengine falling back to, or passing, ``weights_only=False``, or a
      torch whose ``torch.load`` defaults to it), ``'refused'`` that it does not;
    - ``'local_runner_file'``: the local loader on an mmengine runner file (message
      hub ``HistoryBuffer``, numpy scalars); ``'refused'`` means ``--resume`` /
      ``tools/test.py`` fail on mmengine's own checkpoints (``weights_only=True``
      without an allow-list);
    - ``'url_any_global'``: the ``load_url`` of mmengine's http(s) / ``open-mmlab://``
      / ``torchvision://`` loaders on the first file, given as a ``file://`` URL.
    """
    import io
    import os.path as osp
    import pathlib
    import tempfile
    import warnings

    import numpy as np
    from mmengine.logging import HistoryBuffer

    loaders = _stock_loaders()
    buffer = HistoryBuffer()
    buffer.update(1.0)
    runner_file = dict(
        state_dict={'w': torch.zeros(1)},
        message_hub=dict(log_scalars={'loss': buffer}),
        meta=dict(eta=np.float64(1.0), seed=np.int64(0)),
    )

    def has_probe(checkpoint: object) -> bool:
        return isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('probe'), _UnpicklingProbe
        )

    def is_runner_file(checkpoint: object) -> bool:
        return isinstance(checkpoint, dict) and isinstance(
            checkpoint['message_hub']['log_scalars']['loss'], HistoryBuffer
        )

    outcome = {}
    # (mmengine's fallback prints a warning to stdout for every file it retries)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        try:
            tmp_dir = tempfile.TemporaryDirectory()
            tmp = tmp_dir.name
            probe_file, runner_path = osp.join(tmp, 'probe.pth'), osp.join(tmp, 'runner.pth')
            torch.save(dict(probe=_UnpicklingProbe()), probe_file)
            torch.save(runner_file, runner_path)
        except OSError as error:  # no writable temporary folder: assume the worst
            failed = f'failed: no probe files ({error})'
            return dict(local_any_global=failed, local_runner_file=failed, url_any_global=failed)
        outcome['local_any_global'] = _outcome(
            lambda: loaders['local'](probe_file, map_location='cpu'), has_probe
        )
        outcome['local_runner_file'] = _outcome(
            lambda: loaders['local'](runner_path, map_location='cpu'), is_runner_file
        )
        outcome['url_any_global'] = _outcome(
            lambda: loaders['url'](
                pathlib.Path(probe_file).as_uri(),
                model_dir=osp.join(tmp, 'hub'),
                map_location='cpu',
                progress=False,
            ),
            has_probe,
        )
        tmp_dir.cleanup()
    return outcome


def mmengine_loads_weights_only_unaware() -> bool:
    """mmengine's local loader cannot read its own runner files here (it calls
    ``torch.load`` without ``weights_only``, which torch >= 2.6 makes ``True``, and
    without an allow-list): ``--resume``, ``load_from`` and ``test.py`` fail."""
    return stock_checkpoint_loading()['local_runner_file'] != 'loaded'


def mmengine_unpickles_arbitrary_globals() -> bool:
    """mmengine's local loader or its ``load_url`` unpickles any global here (a pickle
    payload in a ``.pth`` file would run), or their behaviour could not be found out."""
    outcome = stock_checkpoint_loading()
    return outcome['local_any_global'] != 'refused' or outcome['url_any_global'] != 'refused'


def safe_checkpoint_loading() -> None:
    """Make mmengine's checkpoint loaders load with ``weights_only=True`` and the
    allow-list of :mod:`crossformer_mm.utils.safe_load`, with errors that name
    the file: the local ('' scheme) loader, and the ``load_url`` that its http(s),
    ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` loaders call (it is
    ``torch.hub.load_state_dict_from_url``, which unpickles with
    ``weights_only=False``). Applied where mmengine's own loaders, tried here
    (:func:`stock_checkpoint_loading`), unpickle arbitrary globals or fail on
    mmengine's runner files."""
    from mmengine.runner import CheckpointLoader
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from .utils.safe_load import load_from_local, load_url

    if CheckpointLoader._schemes.get('') is load_from_local:
        return
    failing = mmengine_loads_weights_only_unaware()
    if not (mmengine_unpickles_arbitrary_globals() or failing):
        return
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    mmengine_checkpoint.load_url = load_url
    outcome = stock_checkpoint_loading()
    found = [
        f'unpickles arbitrary globals from {source} ({outcome[key]}; a pickle payload would run)'
        for key, source in (('local_any_global', 'files'), ('url_any_global', 'URLs'))
        if outcome[key] != 'refused'
    ]
    if failing:
        found.append(f'cannot read its own runner files ({outcome["local_runner_file"]})')
    _applied(
        'safe_checkpoint_loading',
        f'mmengine {mmengine.__version__} with torch {torch.__version__} '
        f'{" and ".join(found)}: checkpoints (files and URLs) load through the safe '
        'allow-list loader',
    )


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

    replaced = [
        _replace_once(dist_utils, name, _cpu_capable_init)
        for name in ('_init_dist_pytorch', '_init_dist_slurm')
    ]
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

        def cpu_wrap_model(
            self: Runner, model_wrapper_cfg: Optional[dict], model: nn.Module
        ) -> nn.Module:
            if not self.distributed or is_model_wrapper(model):
                return wrap_model(self, model_wrapper_cfg, model)
            num_sync_bn = _count_sync_bn(model)
            if num_sync_bn:
                _warn(
                    f'no CUDA device: SyncBN cannot run, {num_sync_bn} SyncBN layers '
                    'reverted to BatchNorm (per-process statistics)'
                )
                model = revert_sync_batchnorm(model)
            if model_wrapper_cfg is None:  # mmengine's default wrapper, as a cfg
                model_wrapper_cfg = dict(
                    type='MMDistributedDataParallel',
                    broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get('find_unused_parameters', False),
                )
            wrapper_cfg = dict(model_wrapper_cfg)
            wrapper_cls = MODEL_WRAPPERS.get(
                wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
            )
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
            _warn(
                'no CUDA device: cfg.sync_bn is ignored, BatchNorm layers keep '
                'per-process statistics'
            )
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
