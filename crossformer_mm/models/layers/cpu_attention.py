"""A compiled CPU kernel for biased attention with head_dim 32 (AVX-512).

``O = softmax(q k^T * scale + M) v``, the log-sum-exp of each score row, and
the gradients of q, k, v and of the mask ``M`` (which PyTorch's CPU flash
kernel does not give). PyTorch's kernel multiplies score blocks with a general
GEMM, whose inner dimension (head_dim 32) is too small for the matmul rate, and
adds the mask in a separate pass. This one forms the scores of 10 query rows x
32 keys in 20 registers, starting from the mask, takes the exact softmax over
each whole row, and accumulates ``P v`` in registers; the backward recomputes
``P`` from the log-sum-exp in the same tiles. On a 2-core AMD EPYC the forward
of the 950-token ICLR groups runs at 64-74 G multiply-adds/s (PyTorch's flash
kernel: 37-51 in the same runs), of the 49-token SDA groups at 23-36 (11-18).
Outputs are written token-major ``(G, N, heads, d)``, the layout ``proj``
reads. Source: ``csrc/biased_attention_avx512.cpp``.

The source has no Python or torch headers: it is compiled with the C++
compiler (``$CXX``, else ``c++``) on first use, in about a second, into
``$CROSSFORMER_MM_KERNEL_CACHE`` (default ``~/.cache/crossformer_mm``,
created private to the user; where that is not writable, a temporary folder
removed once loaded), and loaded with :mod:`ctypes`. The work is
split over ``torch.get_num_threads()`` threads (ctypes releases the GIL).

It is used where it applies (:func:`kernel_applies`): CPU, fp32 or bf16
(computed in fp32), head_dim 32, no autograd graph through it, not while
``torch.compile`` or a JIT trace runs, an AVX-512 CPU
(``torch.backends.cpu.get_cpu_capability()``). Where the compiler is missing or
the build fails, one warning is logged and PyTorch's kernel is used.
``CROSSFORMER_MM_CPU_KERNEL=0`` turns it off.
"""
import ctypes
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

HEAD_DIMS = 32
#: Input dtypes; bf16 operands are converted to fp32 for the kernel and the
#: results back (PyTorch's flash kernel also computes bf16 in fp32).
DTYPES = (torch.float32, torch.bfloat16)
SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'biased_attention_avx512.cpp')
CXX_FLAGS = ('-O3', '-std=c++17', '-shared', '-fPIC', '-fno-exceptions', '-mavx512f',
             '-mavx512dq', '-mavx512bw', '-mavx512vl', '-mfma')
ENABLE_ENV = 'CROSSFORMER_MM_CPU_KERNEL'
CACHE_ENV = 'CROSSFORMER_MM_KERNEL_CACHE'
_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_INT, _FLOAT = ctypes.c_int, ctypes.c_float
_QKV_MASK = [_PTR] * 3 + [_I64] * 3 + [_PTR] + [_I64] * 4  # q, k, v, strides; mask, layout
_FORWARD_ARGS = _QKV_MASK + [_PTR] + [_I64] * 3 + [_PTR, _INT, _INT, _FLOAT, _I64, _I64]
_BACKWARD_ARGS = (_QKV_MASK + [_PTR] + [_I64] * 3 + [_PTR] * 5 + [_I64] * 3
                  + [_INT, _INT, _INT, _FLOAT, _INT, _PTR] + [_I64] * 5)


class KernelBuildError(RuntimeError):
    """The kernel could not be compiled or loaded (the message says why)."""


def cache_dir() -> str:
    """Where the compiled kernel is kept."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
    return osp.join(base, 'crossformer_mm')


def _compiler() -> str:
    cxx = os.environ.get('CXX') or shutil.which('c++') or shutil.which('g++')
    if not cxx or not shutil.which(cxx):
        raise KernelBuildError(f'no C++ compiler found (CXX={os.environ.get("CXX")!r}, '
                               'no c++ / g++ on PATH): install g++ or set CXX')
    return cxx


def _library_path(cxx: str, folder: str) -> str:
    """The library of this source, compiler (and its version) and flags in ``folder``."""
    try:
        version = subprocess.run([cxx, '--version'], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise KernelBuildError(f'{cxx} --version failed: {error}') from error
    with open(SOURCE, 'rb') as f:
        digest = hashlib.sha256(f.read())
    digest.update('\0'.join((cxx, version, *CXX_FLAGS)).encode())
    return osp.join(folder, f'biased_attention_{digest.hexdigest()[:16]}.so')


def _check_private(path: str) -> None:
    """Refuse a library another user could have written."""
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise KernelBuildError(f'{path} is not owned by this user or is group/world-writable: '
                               'not loading it (remove it, or set '
                               f'{CACHE_ENV} to a private folder)')


def build_library(folder: Optional[str] = None) -> str:
    """Compile the kernel into ``folder`` (default :func:`cache_dir`) unless it
    is there, and return the library's path."""
    cxx = _compiler()
    folder = folder or cache_dir()
    path = _library_path(cxx, folder)
    if osp.exists(path):
        _check_private(path)
        return path
    os.makedirs(folder, mode=0o700, exist_ok=True)
    _check_private(folder)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=folder)
    os.close(fd)
    try:
        result = subprocess.run([cxx, *CXX_FLAGS, SOURCE, '-o', tmp], capture_output=True,
                                text=True, timeout=300)
        if result.returncode:
            raise KernelBuildError(f'{cxx} failed on {SOURCE}:\n{result.stderr[-2000:]}')
        os.replace(tmp, path)  # atomic: concurrent builders (DDP ranks) agree
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print_log(f'[crossformer_mm] compiled the CPU attention kernel to {path}', logger='current')
    return path


class _Kernel:
    """The loaded library, built on first use (thread-safe, once per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._library: Optional[ctypes.CDLL] = None
        self._error: Optional[str] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_key = (0, 0)  # (threads, process id)

    def library(self) -> Optional[ctypes.CDLL]:
        """The library, or None (with one logged warning) if it cannot be built."""
        if self._library is None and self._error is None:
            with self._lock:
                if self._library is None and self._error is None:
                    self._load()
        return self._library

    def _load(self) -> None:
        try:
            try:
                library = ctypes.CDLL(build_library())
            except OSError:  # no writable cache: build for this process only
                with tempfile.TemporaryDirectory(prefix='crossformer_mm_') as folder:
                    library = ctypes.CDLL(build_library(folder))  # stays mapped when removed
            functions = (library.cfmm_biased_attention_fwd, library.cfmm_biased_attention_bwd)
        except (KernelBuildError, OSError, AttributeError) as error:
            self._error = str(error)
            print_log(f'[crossformer_mm] CPU attention kernel unavailable, using PyTorch\'s '
                      f'flash kernel instead: {error}', logger='current', level=30)
            return
        for function, argtypes in zip(functions, (_FORWARD_ARGS, _BACKWARD_ARGS)):
            function.argtypes = argtypes
            function.restype = ctypes.c_int
        self._library = library

    def run(self, function, args: tuple, begin: int, end: int,
            thread_args: Optional[List[tuple]] = None) -> None:
        """``function(*args, *thread_args[t], b_t, e_t)``: ``[begin, end)`` split
        into one contiguous range ``[b_t, e_t)`` per thread
        (``torch.get_num_threads()``, or ``len(thread_args)``)."""
        threads = len(thread_args) if thread_args else threads_for(end - begin)
        bounds = [begin + (end - begin) * i // threads for i in range(threads + 1)]
        calls = [(*args, *(thread_args[t] if thread_args else ()), bounds[t], bounds[t + 1])
                 for t in range(threads)]
        if threads == 1:
            codes = [function(*calls[0])]
        else:
            pool = self._thread_pool(threads)
            codes = [future.result() for future in [pool.submit(function, *c) for c in calls]]
        if any(codes):
            raise MemoryError('the CPU attention kernel could not allocate its scratch memory')

    def _thread_pool(self, size: int) -> ThreadPoolExecutor:
        """A pool of ``size`` threads (a new one after a fork: threads do not survive it)."""
        with self._lock:
            if self._pool_key != (size, os.getpid()):
                if self._pool is not None and self._pool_key[1] == os.getpid():
                    self._pool.shutdown()
                self._pool = ThreadPoolExecutor(size, thread_name_prefix='cfmm_attention')
                self._pool_key = (size, os.getpid())
            return self._pool


_KERNEL = _Kernel()


def threads_for(pairs: int) -> int:
    """Threads for ``pairs`` (group, head) pairs."""
    return max(1, min(torch.get_num_threads(), pairs))


def cpu_supported() -> bool:
    """An AVX-512 CPU, as PyTorch dispatches (``ATEN_CPU_CAPABILITY`` included)."""
    return torch.backends.cpu.get_cpu_capability().startswith(('AVX512', 'AMX'))


def kernel_available() -> bool:
    """Enabled (``$CROSSFORMER_MM_CPU_KERNEL`` is not '0'), supported and built."""
    return (os.environ.get(ENABLE_ENV, '1') != '0' and cpu_supported()
            and _KERNEL.library() is not None)


def kernel_supports(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> bool:
    """Whether the kernel takes these operands: q, k, v ``(G, heads, N, 32)``
    views with one set of strides, ``mask`` ``(P, heads, N, N)`` with
    ``G % P == 0``; fp32 or bf16 (computed in fp32) on CPU; the kernel available."""
    tensors = (q, k, v, mask)
    if any(t.device.type != 'cpu' or t.dtype not in DTYPES or t.stride(-1) != 1
           for t in tensors) or not q.dtype == k.dtype == v.dtype:
        return False
    G, H, N, d = q.shape
    return (d == HEAD_DIMS and k.shape == v.shape == q.shape
            and k.stride() == v.stride() == q.stride()
            and mask.dim() == 4 and tuple(mask.shape[1:]) == (H, N, N)
            and G % mask.shape[0] == 0 and kernel_available())


def kernel_applies(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> bool:
    """:func:`kernel_supports`, no autograd graph through the call, and neither
    ``torch.compile`` nor a JIT trace running."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, mask)):
        return False
    return kernel_supports(q, k, v, mask)


def biased_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float,
                     return_lse: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """``softmax(q k^T * scale + mask) v`` (where :func:`kernel_applies`).

    Args:
        q, k, v: (G, heads, N, 32).
        mask: (P, heads, N, N) additive; group ``g`` uses ``mask[g % P]``.
        scale: multiplies ``q k^T``.
        return_lse: also return the log-sum-exp of each score row.

    Returns:
        The output, (G, heads, N, 32) (a view of token-major ``(G, N, heads,
        32)`` memory) in q's dtype, and the fp32 log-sum-exp (G, heads, N) or None.
    """
    dtype = q.dtype
    q, k, v, mask = _fp32(q, k, v, mask)
    G, H, N, d = q.shape
    out = q.new_empty(G, N, H, d)
    lse = q.new_empty(G, H, N) if return_lse else None
    args = (*_qkv_mask_args(q, k, v, mask),
            out.data_ptr(), out.stride(0), out.stride(2), out.stride(1),
            lse.data_ptr() if lse is not None else None, H, N, scale)
    with torch.profiler.record_function('crossformer_mm::biased_attention_fwd'):
        _KERNEL.run(_KERNEL.library().cfmm_biased_attention_fwd, args, 0, G * H)
    return out.transpose(1, 2).to(dtype), lse


def biased_attention_backward(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, out: Tensor,
                              lse: Tensor, grad_out: Tensor,
                              scale: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of :func:`biased_attention` (where :func:`kernel_applies`).

    Args:
        q, k, v, mask, scale: as :func:`biased_attention`.
        out, lse: its output (G, heads, N, 32) and log-sum-exp (G, heads, N).
        grad_out: the gradient of ``out``.

    Returns:
        dq, dk, dv: (G, heads, N, 32) in q's dtype (views of token-major
        memory in fp32), and dmask: the mask's shape and dtype, contiguous
        (summed over the groups that share an entry).
    """
    dtype, mask_dtype = q.dtype, mask.dtype
    q, k, v, mask, out, grad_out = _fp32(q, k, v, mask, out, grad_out)
    G, H, N, d = q.shape
    if grad_out.stride(-1) != 1:
        grad_out = grad_out.contiguous()
    delta = (grad_out * out).sum(-1).contiguous()  # rowsum(dO * O): G, H, N
    lse = lse.contiguous()
    grads = q.new_empty(3, G, N, H, d)
    period, threads = mask.shape[0], threads_for(G * H)
    # Pairs that add to the same mask entry must not run concurrently. A mask
    # shared by the groups: threads take whole heads where that balances, else
    # each adds into a private copy. A mask per group: one image per call.
    shared = period == 1 and G > 1
    head_major = shared and H % threads == 0
    private = shared and not head_major and threads > 1
    dmask = q.new_zeros(threads if private else period, *mask.shape[1:])
    args = (*_qkv_mask_args(q, k, v, mask),
            grad_out.data_ptr(), grad_out.stride(0), grad_out.stride(1), grad_out.stride(2),
            lse.data_ptr(), delta.data_ptr(), *(g.data_ptr() for g in grads),
            grads.stride(1), grads.stride(3), grads.stride(2), G, H, N, scale, int(head_major))
    function = _KERNEL.library().cfmm_biased_attention_bwd
    with torch.profiler.record_function('crossformer_mm::biased_attention_bwd'):
        if private:
            _KERNEL.run(function, args, 0, G * H, thread_args=[
                (dmask[t].data_ptr(), 0, dmask.stride(1), dmask.stride(2))
                for t in range(threads)])
            dmask = dmask.sum(0, keepdim=True)
        else:
            dmask_args = (dmask.data_ptr(), dmask.stride(0), dmask.stride(1), dmask.stride(2))
            image = G * H if period == 1 else period * H  # pairs per image
            for begin in range(0, G * H, image):
                _KERNEL.run(function, (*args, *dmask_args), begin, begin + image)
    return (*(g.transpose(1, 2).to(dtype) for g in grads), dmask.to(mask_dtype))


def _fp32(*tensors: Tensor) -> Tuple[Tensor, ...]:
    """The tensors in fp32 (bf16 ones converted: contiguous, alike strides)."""
    return tuple(t if t.dtype == torch.float32 else t.float() for t in tensors)


def _qkv_mask_args(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> tuple:
    return (q.data_ptr(), k.data_ptr(), v.data_ptr(), q.stride(0), q.stride(1), q.stride(2),
            mask.data_ptr(), mask.shape[0], mask.stride(0), mask.stride(1), mask.stride(2))
