"""Pieces shared by the benchmark scripts (``tools/analysis/benchmark_backbone.py``,
``tools/analysis/gpu_check.py``): the dense-prediction settings, path
switching and a timed matmul. Needs only torch and the backbone."""

import platform
import statistics
import time

import torch
import torch.nn as nn

from crossformer_mm.models.layers import LSDA, Linear

#: CrossFormer settings of the detection / segmentation configs.
DENSE_SETTINGS = dict(group_size=(7, 7, 7, 7), crs_interval=(8, 4, 2, 1), drop_path_rate=0.2)


def select_path(model: nn.Module, fast: bool) -> nn.Module:
    """Switch every LSDA and linear of ``model`` to the fast or the reference path."""
    for module in model.modules():
        if isinstance(module, LSDA):
            module.use_fused_attn = fast
        elif isinstance(module, Linear):
            module.use_onednn = fast
    return model


def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_matmul(n: int, dtype: torch.dtype, device: str, repeat: int = 5, warmup: int = 2) -> float:
    """Median seconds of one ``(n, n) @ (n, n)`` product (``n**3`` multiply-adds)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for run in range(warmup + repeat):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        if run >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the record of a run."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
