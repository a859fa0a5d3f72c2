"""Safe checkpoint loading: ``torch.load(weights_only=True)`` with one allow-list.

Every checkpoint this package reads goes through :func:`load_checkpoint`:
mmengine's local (``''`` scheme) loader is :func:`load_from_local` (registered
by :func:`crossformer_mm.compat.safe_checkpoint_loading`), so ``load_from``,
``--resume``, ``tools/test.py``, ``mim test``, ``init_detector`` / ``init_model``
and the inferencers use it, and so do the backbone's ``Pretrained`` init and
the converters (:func:`crossformer_mm.utils.checkpoint.load_checkpoint_file`).

- A pickle may only use the globals of :data:`SAFE_GLOBALS` (what real files
  need: numpy scalars and arrays and the message hub of mmengine runner files,
  the yacs config of the released CrossFormer classification files) on top of
  torch's own tensor types. Anything else is refused with
  :class:`UnsafeCheckpointError`, which names the file and the globals; the one
  way to load such a file anyway is to trust it explicitly with the environment
  variable ``CROSSFORMER_MM_TRUSTED_CHECKPOINTS`` (see :func:`is_trusted`); it
  is then loaded with ``weights_only=False`` and a
  :class:`TrustedCheckpointWarning` names it.
- A file that is no checkpoint at all (empty, truncated, text, an HTML page
  saved by a failed download, a NumPy file, random bytes) raises one
  :class:`InvalidCheckpointError` that names the file and says what it is.
- NaN / Inf in the weights (``state_dict`` / ``model`` / a raw state dict, not
  the optimizer state) raise :class:`NonFiniteCheckpointError` naming the
  keys, unless ``CROSSFORMER_MM_ALLOW_NONFINITE=1`` (or ``allow_nonfinite=True``).

Nothing global changes: the allow-list is active only inside
``torch.serialization.safe_globals`` around each load.
"""

import os
import os.path as osp
import pickle
import re
import struct
import threading
import warnings
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# numpy 2 moved numpy.core to numpy._core (numpy.core is a deprecated alias there). Files
# name the module of the numpy that wrote them, so the allow-list holds both names, each
# mapped to this numpy's object: a file written with either numpy loads with both.
try:
    import numpy._core.multiarray as np_multiarray
except ImportError:  # numpy < 1.26 (1.26 has numpy._core as an alias of numpy.core)
    import numpy.core.multiarray as np_multiarray

#: Environment variable: files (or folders) whose pickles may run code.
TRUSTED_ENV = 'CROSSFORMER_MM_TRUSTED_CHECKPOINTS'
#: Environment variable: ``1`` accepts NaN / Inf in loaded weights.
NONFINITE_ENV = 'CROSSFORMER_MM_ALLOW_NONFINITE'
_TRUE = ('1', 'true', 'yes', 'on')

MapLocation = Union[None, str, torch.device, Callable, Dict]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs pickle globals outside :data:`SAFE_GLOBALS`."""


class InvalidCheckpointError(ValueError):
    """A file is not a readable checkpoint (empty, truncated, text, HTML, ...)."""


class NonFiniteCheckpointError(ValueError):
    """A checkpoint's weights hold NaN or Inf."""


class TrustedCheckpointWarning(UserWarning):
    """A checkpoint was loaded with ``weights_only=False`` because the user trusts it."""


# the allow-list -------------------------------------------------------------------
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr``: only ``getattr(HistoryBuffer, m)`` for
    the statistics methods that every ``HistoryBuffer`` pickles."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__qualname__", type(obj).__name__)}, {name!r}) is not '
        'allowed (only the statistics methods of mmengine HistoryBuffer are)'
    )


#: The OrderedDicts that stand for yacs CfgNodes in the load running in this thread.
_cfg_nodes = threading.local()


class _CfgNodeStandIn:
    """Stands in for ``yacs.config.CfgNode`` (a dict subclass) while unpickling.

    torch's weights-only unpickler sets items only on exact ``dict`` /
    ``OrderedDict`` objects, so neither the real class nor any dict subclass
    can be unpickled; each node is built as an ``OrderedDict`` (its pickled
    attributes land in the OrderedDict's ``__dict__``) and turned into a real
    ``CfgNode`` (yacs installed) or a :class:`CfgNodeDict` after the load.
    """

    def __new__(cls, *args: Any) -> 'OrderedDict':
        node: OrderedDict = OrderedDict()
        nodes = getattr(_cfg_nodes, 'ids', None)
        if nodes is not None:
            nodes.add(id(node))
        return node


class CfgNodeDict(dict):
    """A yacs ``CfgNode`` of a checkpoint loaded where yacs is not installed:
    a dict with attribute access (``cfg.MODEL.NAME``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


#: Every pickle global (besides torch's own tensor, storage and dtype types) that a
#: checkpoint may use. One entry per global: (object, 'module.name' as pickled, why).
#: The mmengine runner files are those of ``tests/tools/test_checkpoint_paths.py``
#: (stock mmdet / mmseg / mmpose ``tools/train.py``, ``save_optimizer=True``);
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` lists what a file uses.
SAFE_GLOBALS: List[Tuple[Any, str, str]] = [
    (
        HistoryBuffer,
        'mmengine.logging.history_buffer.HistoryBuffer',
        "mmengine runner files (det / seg / pose): every entry of message_hub['log_scalars']",
    ),
    (
        _history_buffer_method,
        'builtins.getattr',
        'mmengine runner files: each pickled HistoryBuffer holds its statistics methods '
        "(getattr(HistoryBuffer, 'min' / 'max' / 'current' / 'mean')); "
        "nothing else may be getattr'd",
    ),
    (
        np_multiarray.scalar,
        'numpy.core.multiarray.scalar',
        'mmengine runner files written with numpy 1: numpy scalars, e.g. '
        "message_hub['runtime_info']['eta'] (float64)",
    ),
    (
        np_multiarray.scalar,
        'numpy._core.multiarray.scalar',
        'mmengine runner files written with numpy 2 (its module is numpy._core): numpy scalars',
    ),
    (np.dtype, 'numpy.dtype', 'mmengine runner files: the dtype of every numpy scalar and array'),
    (
        np.ndarray,
        'numpy.ndarray',
        'mmengine runner files: HistoryBuffer._log_history / _count_history arrays; '
        "pose files: meta['dataset_meta'] arrays (keypoint weights, colours)",
    ),
    (
        np_multiarray._reconstruct,
        'numpy.core.multiarray._reconstruct',
        'mmengine runner files written with numpy 1: how every numpy array above is pickled',
    ),
    (
        np_multiarray._reconstruct,
        'numpy._core.multiarray._reconstruct',
        'mmengine runner files written with numpy 2: how every numpy array above is pickled',
    ),
    # dtype classes are not pickle globals, but rebuilding a dtype checks its class
    (
        type(np.dtype(np.float64)),
        'numpy.dtypes.Float64DType',
        'mmengine runner files: HistoryBuffer._log_history, numpy float64 scalars (eta)',
    ),
    (
        type(np.dtype(np.int64)),
        'numpy.dtypes.Int64DType',
        'mmengine runner files: HistoryBuffer._count_history',
    ),
    (
        type(np.dtype(np.float32)),
        'numpy.dtypes.Float32DType',
        "mmpose runner files: meta['dataset_meta']['dataset_keypoint_weights'] / sigmas",
    ),
    (
        type(np.dtype(np.uint8)),
        'numpy.dtypes.UInt8DType',
        "mmpose runner files: meta['dataset_meta'] keypoint / skeleton colours",
    ),
    (
        _CfgNodeStandIn,
        'yacs.config.CfgNode',
        'released CrossFormer classification files (cheerss/CrossFormer main.py): '
        "ckpt['config'] is the run's yacs CfgNode; loaded as data (see _CfgNodeStandIn)",
    ),
]


def allow_list() -> 'torch.serialization.safe_globals':
    """``torch.serialization.safe_globals`` of :data:`SAFE_GLOBALS` (only the entries
    not already allowed, so leaving the block keeps what the user allowed)."""
    present = torch.serialization.get_safe_globals()
    return torch.serialization.safe_globals(
        [(obj, name) for obj, name, _ in SAFE_GLOBALS if (obj, name) not in present]
    )


# the opt-ins ----------------------------------------------------------------------
def is_trusted(filename: str) -> bool:
    """Whether ``$CROSSFORMER_MM_TRUSTED_CHECKPOINTS`` trusts ``filename``.

    The variable is ``1`` (trust every file) or a ``os.pathsep`` (``:``)
    separated list of files and folders (a folder trusts every file below it).
    """
    value = os.environ.get(TRUSTED_ENV, '').strip()
    if not value:
        return False
    if value.lower() in _TRUE:
        return True
    path = osp.realpath(filename)
    for entry in value.split(os.pathsep):
        if not entry.strip():
            continue
        trusted = osp.realpath(osp.expanduser(entry.strip()))
        if path == trusted or path.startswith(trusted.rstrip(os.sep) + os.sep):
            return True
    return False


def nonfinite_allowed() -> bool:
    """Whether ``$CROSSFORMER_MM_ALLOW_NONFINITE`` accepts NaN / Inf weights."""
    return os.environ.get(NONFINITE_ENV, '').strip().lower() in _TRUE


# recognising files that are no checkpoint -------------------------------------------
_ZIP_MAGIC = b'PK\x03\x04'
_LEGACY_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'  # torch.save before 1.6
_NPY_MAGIC = b'\x93NUMPY'
_HEAD_BYTES = 4096


def _read_head(filename: str) -> bytes:
    with open(filename, 'rb') as f:
        return f.read(_HEAD_BYTES)


def _as_text(head: bytes) -> Optional[str]:
    """``head`` as text if it reads as mostly printable UTF-8, else None."""
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the end
            return None
        text = head[: error.start].decode('utf-8')
    if not text:
        return None
    printable = sum(c.isprintable() or c in '\r\n\t' for c in text)
    return text if printable / len(text) > 0.95 else None


def _first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ''
    return line[:limit] + ('...' if len(line) > limit else '')


def _download_hint(filename: str) -> str:
    return (
        f'download it again (and check the URL) or point the config at the right '
        f'file; delete {filename} if it is a cached download'
    )


def _looks_like_pickle(head: bytes) -> bool:
    """A pickle of protocol 2-5: PROTO, then FRAME (4, 5) or a usual first opcode."""
    if len(head) < 3 or head[0] != 0x80 or head[1] not in (2, 3, 4, 5):
        return False
    return (
        head[2] == 0x95
        if head[1] >= 4
        else head[2:3]
        in (b'}', b']', b'(', b'c', b'X', b'K', b'J', b'\x8a', b'\x88', b'\x89', b'N', b')')
    )


def describe_non_checkpoint(filename: str, head: bytes, size: int) -> Optional[str]:
    """What ``filename`` is when it cannot be a torch checkpoint (None when it may be one)."""
    if size == 0:
        return (
            f'is empty (0 bytes): the download or copy probably failed; {_download_hint(filename)}'
        )
    if head.startswith(_ZIP_MAGIC) or head.startswith(_LEGACY_MAGIC):
        return None
    if filename.endswith('.safetensors'):
        return None
    if head.startswith(_NPY_MAGIC):
        return (
            'is a NumPy .npy file (an array saved with numpy.save), not a PyTorch '
            'checkpoint: read it with numpy.load, or give the .pth file'
        )
    text = _as_text(head)
    if text is not None:
        stripped = text.lstrip('\ufeff \t\r\n').lower()
        if stripped.startswith(('<!doctype html', '<html')) or '<html' in stripped[:1024]:
            title = re.search(r'<title[^>]*>(.*?)</title>', text, re.I | re.S)
            shown = f' (title: {title.group(1).strip()[:80]!r})' if title else ''
            return (
                f'is an HTML page{shown}, not a checkpoint: a failed download (an error '
                f'or login page) saved as a checkpoint file; {_download_hint(filename)}'
            )
        if stripped.startswith('<?xml'):
            return (
                f'is an XML document ({_first_line(text)!r}), not a checkpoint: usually an '
                f'error reply of a storage server saved by a failed download; '
                f'{_download_hint(filename)}'
            )
        if stripped.startswith('version https://git-lfs'):
            return (
                'is a Git LFS pointer, not the checkpoint itself: run `git lfs pull` '
                'in its repository (or download the file)'
            )
        return (
            f'is a text file ({size} bytes, starting {_first_line(text)!r}), not a '
            f'PyTorch checkpoint; {_download_hint(filename)}'
        )
    if _looks_like_pickle(head):
        return (
            'is a plain Python pickle (pickle.dump), not a file written by torch.save: '
            'plain pickles can run code when read and are not loaded'
        )
    if not head.strip(b'\x00'):
        return (
            f'starts with {len(head)} zero bytes ({size} bytes in all): a preallocated '
            f'file of an interrupted download; {_download_hint(filename)}'
        )
    return (
        f'is not a PyTorch checkpoint: its content is none of a torch.save file, a '
        f'NumPy file, text or HTML (first bytes {head[:8]!r}, {size} bytes); is it '
        'the right file?'
    )


def _describe_zip(filename: str, size: int) -> Optional[str]:
    """What a zip-format ``filename`` is when it is no complete torch archive."""
    if not zipfile.is_zipfile(filename):
        return (
            f'is truncated (zip archive incomplete: {size} bytes, no end of archive): '
            f'the download or copy was interrupted; {_download_hint(filename)}'
        )
    with zipfile.ZipFile(filename) as archive:
        names = archive.namelist()
    if any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
        if any(n.endswith('/constants.pkl') or '/code/' in n for n in names):
            return (
                'is a TorchScript archive (torch.jit.save), not a checkpoint: load it '
                'with torch.jit.load, or give the checkpoint (.pth) of the model'
            )
        return None
    if names and all(n.endswith('.npy') for n in names):
        return (
            'is a NumPy .npz archive (numpy.savez), not a PyTorch checkpoint: read it '
            'with numpy.load'
        )
    shown = ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')
    return f'is a zip archive but not a PyTorch checkpoint (it holds: {shown or "nothing"})'


# loading --------------------------------------------------------------------------------
def _unsafe_globals(filename: str, message: str) -> List[str]:
    """The globals of ``filename`` outside the allow-list (from the pickle, or the error)."""
    found: List[str] = []
    try:
        with allow_list():
            found = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # legacy (pre-1.6) files are no zip archives: use the error
        pass
    for pattern in (r'GLOBAL (\S+) was not an allowed global', r'GLOBAL (\S+) whose module'):
        for name in re.findall(pattern, message):
            if name not in found:
                found.append(name)
    return found


def _unsafe_error(filename: str, error: Exception, names: List[str]) -> UnsafeCheckpointError:
    message = str(error)
    if names:
        needs = (
            f'needs the pickle global{"s" if len(names) > 1 else ""} '
            f'{", ".join(names)}, which the allow-list of crossformer_mm.utils.safe_load '
            '(tensors, numpy arrays, the mmengine message hub, yacs configs) does not hold'
        )
    else:
        reason = message.split('WeightsUnpickler error:')[-1].strip().splitlines()
        needs = (
            'cannot be read by the weights-only unpickler '
            f'({reason[0] if reason else type(error).__name__})'
        )
    return UnsafeCheckpointError(
        f'checkpoint {filename} {needs}: reading it could run code from the file, so it is '
        f'not loaded. If you trust this file, allow it with {TRUSTED_ENV}={osp.abspath(filename)} '
        f'(a {os.pathsep!r}-separated list of trusted files or folders, or 1 for all) and '
        'load it again.'
    )


def _invalid_error(filename: str, description: str) -> InvalidCheckpointError:
    return InvalidCheckpointError(f'checkpoint file {filename} {description}')


def _restore_cfg_nodes(obj: Any, ids: set) -> Any:
    """Replace the OrderedDicts built for yacs CfgNodes (``ids``) by real
    ``yacs.config.CfgNode`` objects (or :class:`CfgNodeDict` without yacs)."""
    try:
        from yacs.config import CfgNode
    except ImportError:
        CfgNode = None

    def convert(node: Any) -> Any:
        if isinstance(node, torch.Tensor):
            return node
        if isinstance(node, dict):
            items = [(k, convert(v)) for k, v in node.items()]
            if id(node) not in ids:
                for k, v in items:
                    if node[k] is not v:
                        node[k] = v
                return node
            cls = CfgNode if CfgNode is not None else CfgNodeDict
            restored = cls.__new__(cls)
            dict.update(restored, items)
            restored.__dict__.update(vars(node))  # what unpickling a CfgNode sets
            return restored
        if isinstance(node, list):
            node[:] = [convert(v) for v in node]
            return node
        if isinstance(node, tuple):
            return type(node)(convert(v) for v in node) if type(node) is tuple else node
        return node

    return convert(obj)


def _weights_only_load(filename: str, map_location: MapLocation) -> Any:
    _cfg_nodes.ids = set()
    try:
        with allow_list():
            checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
        if _cfg_nodes.ids:
            checkpoint = _restore_cfg_nodes(checkpoint, _cfg_nodes.ids)
        return checkpoint
    finally:
        _cfg_nodes.ids = None


def _load(filename: str, map_location: MapLocation) -> Any:
    """torch.load with the allow-list; every failure becomes one clear error."""
    if osp.isdir(filename):
        raise _invalid_error(filename, 'is a folder, not a checkpoint file')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} does not exist (can not be found).')
    size = osp.getsize(filename)
    head = _read_head(filename)
    description = describe_non_checkpoint(filename, head, size)
    if description is None and head.startswith(_ZIP_MAGIC):
        description = _describe_zip(filename, size)
    if description is not None:
        raise _invalid_error(filename, description)
    try:
        return _weights_only_load(filename, map_location)
    except Exception as error:  # noqa: B902 (sorted below; anything else is re-raised)
        if isinstance(error, pickle.UnpicklingError) and _refused(error):
            names = _unsafe_globals(filename, str(error))
            if not is_trusted(filename):
                raise _unsafe_error(filename, error, names) from None
        elif _damaged(error):
            kind = 'a zip-format' if head.startswith(_ZIP_MAGIC) else 'a pre-1.6'
            raise _invalid_error(
                filename,
                f'is truncated or corrupted ({kind} torch.save file that cannot be '
                f'read: {_short(error)}); {_download_hint(filename)}',
            ) from None
        else:
            raise
    warnings.warn(
        f'loading checkpoint {filename} with weights_only=False because {TRUSTED_ENV} trusts '
        f'it; it needs {", ".join(names) or "objects"} outside the allow-list, and its pickle '
        'may run code',
        TrustedCheckpointWarning,
        stacklevel=3,
    )
    return torch.load(filename, map_location=map_location, weights_only=False)


def _refused(error: Exception) -> bool:
    """Whether a weights-only error is a refusal (a global / an object kind), not bad data."""
    message = str(error)
    return any(
        s in message
        for s in (
            'GLOBAL',
            'Unsupported operand',
            'Can only',
            'not allowed',
            'Trying to call reduce',
            'persistent_load',
            'must be imported',
        )
    )


def _damaged(error: Exception) -> bool:
    """Whether a load error means the bytes of a torch.save file are damaged."""
    if isinstance(
        error,
        (
            EOFError,
            UnicodeDecodeError,
            zipfile.BadZipFile,
            pickle.UnpicklingError,
            IndexError,
            struct.error,
        ),
    ):
        # (the weights-only unpickler indexes / unpacks past the end of a cut pickle)
        return True
    return isinstance(error, RuntimeError) and any(
        s in str(error)
        for s in (
            'PytorchStreamReader',
            'unexpected EOF',
            'corrupt',
            'Invalid magic number',
            'storage has wrong size',
        )
    )


def _short(error: Exception, limit: int = 160) -> str:
    text = ' '.join(str(error).split()) or type(error).__name__
    return text[:limit] + ('...' if len(text) > limit else '')


# NaN / Inf --------------------------------------------------------------------------
def model_weights(checkpoint: Any) -> Mapping[str, Any]:
    """The weights of a checkpoint: ``state_dict`` / ``model`` / the raw state dict
    (:func:`crossformer_mm.utils.checkpoint.unwrap_state_dict`, unchecked: ``{}``
    for a non-mapping, values that are no tensors kept)."""
    from .checkpoint import unwrap_state_dict  # (checkpoint imports this module)

    return unwrap_state_dict(checkpoint, check=False)


def nonfinite_keys(weights: Mapping[str, Any]) -> List[Tuple[str, int]]:
    """(key, number of NaN / Inf values) of every floating tensor that has any."""
    bad = []
    for key, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
            count = int((~torch.isfinite(value)).sum())
            if count:
                bad.append((str(key), count))
    return bad


def check_finite(checkpoint: Any, filename: str, allow_nonfinite: Optional[bool] = None) -> None:
    """Raise :class:`NonFiniteCheckpointError` if the weights hold NaN / Inf.

    ``allow_nonfinite=None`` reads ``$CROSSFORMER_MM_ALLOW_NONFINITE``.
    """
    if allow_nonfinite is None:
        allow_nonfinite = nonfinite_allowed()
    if allow_nonfinite:
        return
    bad = nonfinite_keys(model_weights(checkpoint))
    if not bad:
        return
    shown = ', '.join(f'{k} ({n} values)' for k, n in bad[:5])
    more = f' and {len(bad) - 5} more' if len(bad) > 5 else ''
    raise NonFiniteCheckpointError(
        f'checkpoint {filename}: {len(bad)} weight tensor{"s" if len(bad) > 1 else ""} hold '
        f'NaN or Inf: {shown}{more}. A model with these weights outputs NaN (was it saved by '
        f'a diverged run?). To load it anyway set {NONFINITE_ENV}=1 (for the CrossFormer '
        "backbone also init_cfg=dict(type='Pretrained', ..., allow_nonfinite=True))."
    )


# public entry points ----------------------------------------------------------------
def load_checkpoint(
    filename: str, map_location: MapLocation = None, allow_nonfinite: Optional[bool] = None
) -> Any:
    """Load a local checkpoint file safely (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        InvalidCheckpointError: the file is no readable checkpoint.
        UnsafeCheckpointError: the pickle needs globals outside :data:`SAFE_GLOBALS`
            and ``$CROSSFORMER_MM_TRUSTED_CHECKPOINTS`` does not trust the file.
        NonFiniteCheckpointError: NaN / Inf in the weights (``allow_nonfinite``
            or ``$CROSSFORMER_MM_ALLOW_NONFINITE`` relaxes it).
    """
    filename = osp.expanduser(str(filename))
    checkpoint = _load(filename, map_location)
    check_finite(checkpoint, filename, allow_nonfinite)
    return checkpoint


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine's local checkpoint loader (``CheckpointLoader`` scheme ``''``),
    through :func:`load_checkpoint`."""
    return load_checkpoint(filename, map_location)


def load_url(
    url: str,
    model_dir: Optional[str] = None,
    map_location: MapLocation = None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: Optional[str] = None,
) -> Any:
    """``torch.hub.load_state_dict_from_url`` (which mmengine's http loader calls
    with ``weights_only=False``), with the download loaded by :func:`load_checkpoint`.

    The file is cached where torch.hub caches it (``$TORCH_HOME/checkpoints``).
    """
    from urllib.parse import urlparse

    from torch.hub import HASH_REGEX, download_url_to_file, get_dir

    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, file_name or osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        hash_prefix = None
        if check_hash:
            match = HASH_REGEX.search(osp.basename(cached))
            hash_prefix = match.group(1) if match else None
        download_url_to_file(url, cached, hash_prefix, progress=progress)
    return load_checkpoint(cached, map_location)


def load_from_http(
    filename: str,
    map_location: MapLocation = None,
    model_dir: Optional[str] = None,
    progress: bool = False,
) -> Any:
    """mmengine's http(s) checkpoint loader through :func:`load_url` (rank 0
    downloads first in distributed runs, as mmengine's does)."""
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = load_url(
            filename, model_dir=model_dir, map_location=map_location, progress=progress
        )
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load_url(
                filename, model_dir=model_dir, map_location=map_location, progress=progress
            )
    return checkpoint
