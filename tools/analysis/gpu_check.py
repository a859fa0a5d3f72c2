"""GPU check of the CrossFormer backbone: fast path vs reference, autocast, speed, memory.

One run, on one device, writes ``--out`` (default ``$OUT/gpu_check.json``,
``work_dirs/gpu_check/gpu_check.json`` where ``OUT`` is unset) after every
section and prints Markdown tables. Entry on a bare CUDA machine:
``bash tools/analysis/gpu_check.sh`` (it installs the carried wheels first).
Each section is guarded: a failure is recorded as ``error`` and the rest runs.

Sections:

* ``fast_vs_ref``: CrossFormer-S with the detection settings
  (``group_size=7``, ``crs_interval=(8, 4, 2, 1)``, ``drop_path_rate=0.2``),
  ``lda_mode`` 'iclr' and 'windowed', at an unpadded and a padded size,
  batch 2, fp32 with TF32 off, eval mode (DropPath off: its random masks are
  not part of the compared function). Every LSDA's ``use_fused_attn`` is
  switched on / off on the same weights and input; the backbone outputs and
  every parameter's gradient (loss = sum of the output means) must agree
  within ``max|fast - ref| <= 1e-4 * max|ref|`` per tensor.
* ``autocast``: fp16 and bf16 autocast forward + backward of both paths and
  modes at the padded size: outputs and gradients must be finite.
* ``sdpa_kernels``: the aten attention ops a training step of the fast path
  dispatches to (``torch.profiler``).
* ``matmul_peak``: dense ``n x n x n`` matmul rate per precision (median of
  timed products after warm-up): the ceiling the achieved rates are set against.
* ``flops``: forward FLOPs of one image by ``torch.utils.flop_counter.FlopCounterMode``
  (2 FLOPs per multiply-add, i.e. twice the papers' "FLOPs"), counted on the
  explicit attention (CrossFormer's reference path, timm's ``fused_attn=False``):
  FlopCounterMode does not see every fused SDPA kernel (not CPU's), and both
  compute the same products. A training step counts 3x the forward.
* ``timing``: inference (``no_grad``) and a training step (forward + backward)
  of CrossFormer-S ('iclr', fast path), CrossFormer-S 'windowed' and timm's
  Swin-T (``features_only``), fp32 (TF32 off), bf16 and fp16 autocast, the
  models taking turns in every repetition; median of 7 synchronised runs after
  3 warm-up runs (``--smoke``: 1 after 1); peak memory of one more step
  (``max_memory_allocated`` minus the memory allocated before it; CUDA only).
  Blocks run by priority (bf16, fp32, fp16, then fast vs reference path) and
  are skipped once the next one would end past ``--budget-s``.

Example::

    python tools/analysis/gpu_check.py                       # CUDA, full sizes
    python tools/analysis/gpu_check.py --device cpu --smoke  # tiny sizes, 1 repeat
"""

import argparse
import contextlib
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from crossformer_mm.utils.benchmark import DENSE_SETTINGS, select_path, synchronize, time_matmul

Size = Tuple[int, int]

LDA_MODES = ('iclr', 'windowed')
TOLERANCE = 1e-4
#: A reference gradient below this fraction of the model's largest one is zero
#: up to rounding (e.g. the DPB's last bias: a per-head constant added to every
#: score, to which softmax is invariant); it is compared relative to the largest.
ROUNDING_ZERO = 1e-6
DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)
SWIN_T = 'swin_tiny_patch4_window7_224'
#: The rows of the fast-vs-reference timing blocks, and whose FLOPs they use.
FAST, REF = 'CrossFormer-S iclr (fast)', 'CrossFormer-S iclr (ref)'
FLOPS_OF = {FAST: 'CrossFormer-S iclr', REF: 'CrossFormer-S iclr'}
#: Full run (CUDA) and ``--smoke`` settings.
PROFILES = dict(
    full=dict(
        compare_sizes=[(224, 224), (250, 330)],
        timing_sizes=[(800, 1216), (1024, 1024)],
        batch=2,
        warmup=3,
        repeat=7,
        matmul_n=8192,
        precisions=['bf16', 'fp32', 'fp16'],
    ),
    smoke=dict(
        compare_sizes=[(224, 224), (72, 100)],
        timing_sizes=[(64, 96)],
        batch=1,
        warmup=1,
        repeat=1,
        matmul_n=256,
        precisions=['bf16', 'fp32'],
    ),
)

START = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - START


def log(msg: str) -> None:
    print(f'[gpu_check {elapsed():6.1f}s] {msg}', flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--device',
        default='auto',
        choices=['auto', 'cuda', 'cpu'],
        help="'auto': cuda when available",
    )
    parser.add_argument(
        '--smoke',
        action='store_true',
        help='tiny sizes, batch 1, 1 repeat, bf16 and fp32 (a CPU test)',
    )
    parser.add_argument(
        '--out',
        help='json file (default $OUT/gpu_check.json, '
        'work_dirs/gpu_check/gpu_check.json without OUT)',
    )
    parser.add_argument(
        '--budget-s',
        type=float,
        default=270.0,
        help='timing blocks that would end later than this are skipped',
    )
    args = parser.parse_args()
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    elif args.device == 'cuda' and not torch.cuda.is_available():
        parser.error(
            '--device cuda: torch sees no CUDA device '
            f'(torch {torch.__version__}, CUDA build {torch.version.cuda}); '
            'use --device cpu --smoke for a CPU run'
        )
    args.out = args.out or osp.join(
        os.environ.get('OUT') or 'work_dirs/gpu_check', 'gpu_check.json'
    )
    args.profile = PROFILES['smoke' if args.smoke else 'full']
    return args


# helpers ----------------------------------------------------------------------
def autocast(device: str, precision: str):
    """Autocast to ``precision`` ('fp32': none)."""
    if precision == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=DTYPES[precision])


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls / convolutions on or off for the duration of the block."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def error_record(exc: BaseException) -> dict:
    """``{'error': message, 'traceback': last lines}`` of a failure."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return dict(error=f'{type(exc).__name__}: {exc}', traceback=''.join(lines)[-2000:])


def free_memory(device: str) -> None:
    if device == 'cuda':
        torch.cuda.empty_cache()


def build_crossformer(lda_mode: str, device: str) -> nn.Module:
    """CrossFormer-S with the detection settings, initialised, on ``device``."""
    from crossformer_mm.models.backbones import CrossFormer

    model = CrossFormer(arch='small', lda_mode=lda_mode, **DENSE_SETTINGS)
    model.init_weights()
    return model.to(device)


def build_swin(size: Size, device: str) -> nn.Module:
    """timm's Swin-T, random weights, returning its 4 stage outputs at ``size``
    (drop-path 0.2, as mmdet's Swin-T detection config)."""
    import timm

    return timm.create_model(
        SWIN_T, pretrained=False, features_only=True, img_size=size, drop_path_rate=0.2
    ).to(device)


def forward_backward(
    model: nn.Module, inputs: torch.Tensor, device: str, precision: str
) -> Tuple[List[torch.Tensor], Dict[str, torch.Tensor]]:
    """Outputs (fp32) and parameter gradients of loss = sum of the output means."""
    model.zero_grad(set_to_none=True)
    with autocast(device, precision):
        outs = model(inputs)
    sum(out.float().mean() for out in outs).backward()
    grads = {
        name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None
    }
    return [out.detach().float() for out in outs], grads


def relative_difference(value: torch.Tensor, reference: torch.Tensor) -> float:
    """``max|value - reference| / max|reference|`` (absolute where the reference is 0)."""
    value, reference = value.double(), reference.double()
    scale = float(reference.abs().max())
    return float((value - reference).abs().max()) / (scale or 1.0)


def compare_gradients(fast: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor]) -> dict:
    """Worst per-tensor relative difference of the gradients (:data:`ROUNDING_ZERO`)."""
    if fast.keys() != ref.keys():
        raise RuntimeError(
            f'the paths give gradients to different parameters: {sorted(fast.keys() ^ ref.keys())}'
        )
    largest = max(float(grad.abs().max()) for grad in ref.values())
    diffs, zeros = {}, []
    for name, grad in ref.items():
        scale = float(grad.abs().max())
        if scale <= ROUNDING_ZERO * largest:
            zeros.append(name)
            scale = largest
        diffs[name] = float((fast[name].double() - grad.double()).abs().max()) / (scale or 1.0)
    worst = max(diffs, key=diffs.get)
    return dict(
        grad_max_rel_diff=diffs[worst],
        worst_grad_param=worst,
        params_compared=len(diffs),
        rounding_zero_grads=len(zeros),
    )


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


@contextlib.contextmanager
def padding_recorder(model: nn.Module) -> Iterator[dict]:
    """Count the LSDA calls, and those whose grouping pads the map (``None``
    where LSDA has no ``layout``)."""
    from crossformer_mm.models.layers import LSDA

    counts = dict(lsda_calls=0, padded_lsda_calls=0)

    def hook(module: nn.Module, args: tuple) -> None:
        counts['lsda_calls'] += 1
        height, width = args[0].shape[1:3]
        layout = getattr(module, 'layout', None)
        if layout is None:
            counts['padded_lsda_calls'] = None
        elif counts['padded_lsda_calls'] is not None:
            counts['padded_lsda_calls'] += int(layout(height, width).is_padded)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, LSDA)]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


# sections ---------------------------------------------------------------------
def check_fast_vs_ref(models: Dict[str, nn.Module], sizes: Sequence[Size], device: str) -> dict:
    """Fast vs reference outputs and gradients, fp32 without TF32."""
    cases = []
    with tf32(False):
        for lda_mode, model in models.items():
            model.eval()
            for size in sizes:
                torch.manual_seed(0)
                inputs = torch.randn(2, 3, *size, device=device)
                with padding_recorder(select_path(model, True)) as counts:
                    fast_outs, fast_grads = forward_backward(model, inputs, device, 'fp32')
                ref_outs, ref_grads = forward_backward(
                    select_path(model, False), inputs, device, 'fp32'
                )
                select_path(model, True)
                grads = compare_gradients(fast_grads, ref_grads)
                out_diff = max(relative_difference(a, b) for a, b in zip(fast_outs, ref_outs))
                case = dict(
                    lda_mode=lda_mode,
                    size=list(size),
                    batch=2,
                    **counts,
                    output_max_rel_diff=out_diff,
                    **grads,
                    ok=out_diff <= TOLERANCE and grads['grad_max_rel_diff'] <= TOLERANCE,
                )
                cases.append(case)
                log(
                    f'fast vs ref {lda_mode} {size}: outputs {out_diff:.1e}, '
                    f'grads {grads["grad_max_rel_diff"]:.1e} ({grads["worst_grad_param"]}) -> '
                    f'{"ok" if case["ok"] else "MISMATCH"}'
                )
                del fast_grads, ref_grads
                free_memory(device)
    return dict(
        tolerance=TOLERANCE,
        rounding_zero=ROUNDING_ZERO,
        precision='fp32, TF32 off',
        mode='eval (DropPath off)',
        ok=all(c['ok'] for c in cases),
        cases=cases,
    )


def check_autocast(models: Dict[str, nn.Module], size: Size, device: str) -> dict:
    """fp16 / bf16 autocast forward + backward: finite outputs and gradients."""
    cases = []
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, *size, device=device)
    for lda_mode, model in models.items():
        model.eval()
        with tf32(False):
            reference, _ = forward_backward(select_path(model, False), inputs, device, 'fp32')
        for precision in ('fp16', 'bf16'):
            for fast in (True, False):
                case = dict(
                    precision=precision,
                    lda_mode=lda_mode,
                    path='fast' if fast else 'ref',
                    size=list(size),
                    batch=2,
                )
                try:
                    outs, grads = forward_backward(
                        select_path(model, fast), inputs, device, precision
                    )
                    case.update(
                        finite_outputs=all_finite(outs),
                        finite_grads=all_finite(list(grads.values())),
                        output_max_rel_diff_vs_fp32=max(
                            relative_difference(a, b) for a, b in zip(outs, reference)
                        ),
                    )
                    case['ok'] = case['finite_outputs'] and case['finite_grads']
                except Exception as exc:  # e.g. an op without a CPU fp16 kernel
                    case.update(ok=False, **error_record(exc))
                cases.append(case)
                log(
                    f'autocast {precision} {lda_mode} {case["path"]}: '
                    f'{"finite" if case["ok"] else case.get("error", "NOT FINITE")}'
                )
        select_path(model, True)
        free_memory(device)
    return dict(ok=all(c['ok'] for c in cases), cases=cases)


def sdpa_kernels(model: nn.Module, size: Size, device: str) -> dict:
    """The aten attention ops of the fast path in inference and in a training
    step, bf16 autocast (CUDA) / fp32 (CPU)."""
    from torch.profiler import ProfilerActivity, profile

    precision = 'bf16' if device == 'cuda' else 'fp32'
    inputs = torch.randn(2, 3, *size, device=device)
    model = select_path(model, True)
    ops = {}
    for mode in ('infer', 'train'):
        model.train(mode == 'train')
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            if mode == 'train':
                forward_backward(model, inputs, device, precision)
            else:
                with torch.no_grad(), autocast(device, precision):
                    model(inputs)
        ops[mode] = sorted(
            {
                e.key
                for e in prof.key_averages()
                if 'attention' in e.key or 'scaled_dot_product' in e.key
            }
        )
        log(f'attention ops ({mode}): {", ".join(ops[mode]) or "none (explicit kernels)"}')
    return dict(precision=precision, size=list(size), batch=2, ops=ops)


def matmul_peak(device: str, n: int, precisions: Sequence[str]) -> dict:
    """TFLOP/s of an ``n x n x n`` matmul per precision (2 n^3 FLOPs; median of 10 after 3)."""
    rates = {}
    settings = [(p, False) for p in precisions] + ([('tf32', True)] if device == 'cuda' else [])
    for name, allow_tf32 in settings:
        dtype = DTYPES['fp32' if name == 'tf32' else name]
        with tf32(allow_tf32):
            seconds = time_matmul(n, dtype, device, repeat=10, warmup=3)
        rates[name] = 2 * n**3 / seconds / 1e12
        log(f'matmul {n}^3 {name}: {rates[name]:.3g} TFLOP/s')
    return dict(n=n, tflops=rates, note='fp32 = TF32 off; tf32 = fp32 inputs, TF32 on')


def count_flops(model: nn.Module, size: Size, device: str) -> float:
    """Forward FLOPs of one image (FlopCounterMode, explicit attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    fused = {m: m.fused_attn for m in model.modules() if hasattr(m, 'fused_attn')}  # timm
    for module in fused:
        module.fused_attn = False
    try:
        model.eval()
        with torch.no_grad(), tf32(False), FlopCounterMode(display=False) as counter:
            model(torch.randn(1, 3, *size, device=device))
        return float(counter.get_total_flops())
    finally:
        for module, value in fused.items():
            module.fused_attn = value


class Timer:
    """Timed steps of several models taking turns, with the global time guard."""

    def __init__(self, device: str, batch: int, warmup: int, repeat: int, budget_s: float):
        self.device, self.batch, self.warmup, self.repeat = device, batch, warmup, repeat
        self.budget_s = budget_s
        self.block_seconds: Dict[Tuple[Size, str], float] = {}

    def step(self, model: nn.Module, inputs: torch.Tensor, mode: str, precision: str) -> None:
        """One inference (no grad) or training (forward + backward) step."""
        if mode == 'infer':
            with torch.no_grad(), autocast(self.device, precision):
                model(inputs)
            return
        with autocast(self.device, precision):
            outs = model(inputs)
        sum(out.float().mean() for out in outs).backward()

    def prepare(self, model: nn.Module, mode: str) -> None:
        model.train(mode == 'train')
        model.zero_grad(set_to_none=True)

    def peak_memory_mib(
        self, model: nn.Module, inputs: torch.Tensor, mode: str, precision: str
    ) -> Optional[float]:
        """What one step adds to the allocated CUDA memory at its peak (None on CPU)."""
        if self.device != 'cuda':
            return None
        self.prepare(model, mode)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        self.step(model, inputs, mode, precision)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20

    def fits(self, size: Size, mode: str) -> bool:
        """Whether a block like the last one of (size, mode) still ends within the budget."""
        return elapsed() + self.block_seconds.get((size, mode), 0.0) <= self.budget_s

    def time_block(
        self, models: Dict[str, Callable[[], nn.Module]], size: Size, mode: str, precision: str
    ) -> List[dict]:
        """Median seconds per step of each model (taking turns) and its peak memory."""
        start_block = elapsed()
        inputs = torch.randn(self.batch, 3, *size, device=self.device)
        times: Dict[str, List[float]] = {name: [] for name in models}
        errors: Dict[str, dict] = {}
        for run in range(self.warmup + self.repeat):
            for name, get_model in models.items():
                if name in errors:
                    continue
                try:
                    model = get_model()
                    self.prepare(model, mode)
                    synchronize(self.device)
                    start = time.perf_counter()
                    self.step(model, inputs, mode, precision)
                    synchronize(self.device)
                    if run >= self.warmup:
                        times[name].append(time.perf_counter() - start)
                except Exception as exc:  # e.g. out of memory: the other models go on
                    errors[name] = error_record(exc)
                    free_memory(self.device)
        rows = []
        for name, get_model in models.items():
            row = dict(
                model=name, size=list(size), mode=mode, precision=precision, batch=self.batch
            )
            if name in errors:
                row.update(errors[name])
            else:
                try:
                    memory = self.peak_memory_mib(get_model(), inputs, mode, precision)
                except Exception as exc:
                    memory = None
                    row['memory_error'] = error_record(exc)['error']
                row.update(
                    median_ms=1000 * statistics.median(times[name]),
                    runs_ms=[1000 * t for t in times[name]],
                    peak_memory_mib=memory,
                )
            rows.append(row)
            free_memory(self.device)
        self.block_seconds[(size, mode)] = elapsed() - start_block
        return rows


def add_rates(row: dict, flops: dict, peaks: dict) -> None:
    """Achieved TFLOP/s and its fraction of the measured matmul rate of the precision."""
    gflops = flops.get(FLOPS_OF.get(row['model'], row['model']), {}).get(
        'x'.join(map(str, row['size']))
    )
    if 'median_ms' not in row or gflops is None:
        return
    step_flops = gflops * 1e9 * row['batch'] * (3 if row['mode'] == 'train' else 1)
    row['images_per_s'] = row['batch'] / (row['median_ms'] / 1000)
    row['tflops_per_s'] = step_flops / (row['median_ms'] / 1000) / 1e12
    peak = peaks.get(row['precision'])
    row['fraction_of_matmul_peak'] = row['tflops_per_s'] / peak if peak else None


def speedups(rows: Sequence[dict]) -> List[dict]:
    """Reference / fast path time of the fast-vs-reference blocks."""
    times = {
        (r['model'], tuple(r['size']), r['mode'], r['precision']): r['median_ms']
        for r in rows
        if 'median_ms' in r
    }
    return [
        dict(
            size=list(size),
            mode=mode,
            precision=precision,
            speedup=times[(REF, size, mode, precision)] / ms,
        )
        for (model, size, mode, precision), ms in times.items()
        if model == FAST and (REF, size, mode, precision) in times
    ]


# report -----------------------------------------------------------------------
def environment(device: str) -> dict:
    import crossformer_mm

    versions = {}
    for name in ('mmengine', 'mmcv', 'timm', 'cv2'):
        with contextlib.suppress(Exception):
            versions[name] = __import__(name).__version__
    env = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        cuda_build=torch.version.cuda,
        numpy=np.__version__,
        crossformer_mm=crossformer_mm.__version__,
        device=device,
        cpu_threads=torch.get_num_threads(),
        **versions,
    )
    if device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            gpu_capability=f'{props.major}.{props.minor}',
            gpu_memory_gib=props.total_memory / 2**30,
            gpu_multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            sdpa_backends=dict(
                flash=torch.backends.cuda.flash_sdp_enabled(),
                mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
                math=torch.backends.cuda.math_sdp_enabled(),
            ),
        )
    return env


def markdown_report(results: dict) -> str:
    """The timing table (ready for the README) and the correctness tables."""
    env = results['env']
    lines = [
        f'GPU check: {env.get("gpu", env["device"])}, torch {env["torch"]} '
        f'(CUDA {env["cuda_build"]}), timm {env.get("timm", "-")}; '
        'FLOPs: FlopCounterMode, 2 per multiply-add, training = 3x forward.',
        '',
        '| model | input | mode | precision | ms/step | img/s | peak MiB | TFLOP/s '
        '| of matmul peak |',
        '| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ]
    timing = results['sections'].get('timing', {})

    def fmt(value, spec: str) -> str:
        return '-' if value is None else format(value, spec)

    for row in timing.get('rows', []):
        size = 'x'.join(map(str, row['size'])) + f' x{row["batch"]}'
        if 'median_ms' not in row:
            lines.append(
                f'| {row["model"]} | {size} | {row["mode"]} | {row["precision"]} '
                f'| error: {row.get("error", "?")[:60]} | | | | |'
            )
            continue
        fraction = row.get('fraction_of_matmul_peak')
        lines.append(
            f'| {row["model"]} | {size} | {row["mode"]} | {row["precision"]} '
            f'| {row["median_ms"]:.1f} | {fmt(row.get("images_per_s"), ".1f")} '
            f'| {fmt(row["peak_memory_mib"], ".0f")} | {fmt(row.get("tflops_per_s"), ".3g")} '
            f'| {"-" if fraction is None else f"{100 * fraction:.0f}%"} |'
        )
    for speedup in timing.get('speedup_fast_vs_ref', []):
        lines.append(
            f'fast / reference path speed-up, {"x".join(map(str, speedup["size"]))} '
            f'{speedup["mode"]} {speedup["precision"]}: {speedup["speedup"]:.2f}x'
        )
    for skipped in timing.get('skipped', []):
        lines.append(f'skipped (time budget): {skipped}')
    peaks = results['sections'].get('matmul_peak', {}).get('tflops', {})
    if peaks:
        lines += [
            '',
            'matmul peak (TFLOP/s): ' + ', '.join(f'{k} {v:.3g}' for k, v in peaks.items()),
        ]
    compare = results['sections'].get('fast_vs_ref', {})
    lines += [
        '',
        f'Fast vs reference path, fp32 (tolerance {TOLERANCE:g} x max|ref|):',
        '',
        '| lda_mode | input | padded LSDA calls | outputs | gradients (worst) | ok |',
        '| --- | --- | ---: | ---: | ---: | --- |',
    ]
    for case in compare.get('cases', []):
        lines.append(
            f'| {case["lda_mode"]} | {"x".join(map(str, case["size"]))} '
            f'| {case["padded_lsda_calls"]}/{case["lsda_calls"]} '
            f'| {case["output_max_rel_diff"]:.1e} | {case["grad_max_rel_diff"]:.1e} '
            f'| {"yes" if case["ok"] else "NO"} |'
        )
    cases = results['sections'].get('autocast', {}).get('cases', [])
    if cases:
        lines += [
            '',
            'Autocast (forward + backward finite): '
            + ', '.join(
                f'{c["precision"]}/{c["lda_mode"]}/{c["path"]} {"ok" if c["ok"] else "FAILED"}'
                for c in cases
            ),
        ]
    errors = [f'{name}: {s["error"]}' for name, s in results['sections'].items() if 'error' in s]
    if errors:
        lines += ['', 'Sections that failed: ' + '; '.join(errors)]
    return '\n'.join(lines)


def write_json(results: dict, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    results['elapsed_s'] = elapsed()
    with open(path + '.tmp', 'w') as f:
        json.dump(results, f, indent=2)
    os.replace(path + '.tmp', path)


def main() -> int:
    args = parse_args()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('default')  # each warning once per place, e.g. SDPA's kernel choice
        warnings.simplefilter('ignore', DeprecationWarning)
        return run_checks(args, caught)


def run_checks(args: argparse.Namespace, caught: List[warnings.WarningMessage]) -> int:
    """All sections; 0 if the checks passed and no section failed."""
    profile, device = args.profile, args.device
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    results = dict(
        env=environment(device),
        settings=dict(
            smoke=args.smoke,
            budget_s=args.budget_s,
            arch='small',
            **DENSE_SETTINGS,
            **profile,
            tf32=False,
        ),
        sections={},
    )
    sections = results['sections']
    log(f'torch {torch.__version__} on {results["env"].get("gpu", device)}; writing {args.out}')

    def run(name: str, fn: Callable[[], dict]) -> dict:
        """Run one section; a failure is recorded and the next one runs."""
        log(f'section {name}')
        try:
            sections[name] = fn()
        except Exception as exc:
            sections[name] = error_record(exc)
            log(f'section {name} FAILED: {sections[name]["error"]}')
            free_memory(device)
        results['warnings'] = sorted({f'{w.category.__name__}: {w.message}' for w in caught})[:30]
        write_json(results, args.out)
        return sections[name]

    models: Dict[str, nn.Module] = {}

    def build() -> dict:
        torch.manual_seed(0)
        for lda_mode in LDA_MODES:
            models[lda_mode] = build_crossformer(lda_mode, device)
        return dict(params_m=sum(p.numel() for p in models['iclr'].parameters()) / 1e6)

    run('build', build)
    padded = profile['compare_sizes'][-1]
    run('fast_vs_ref', lambda: check_fast_vs_ref(models, profile['compare_sizes'], device))
    run('autocast', lambda: check_autocast(models, padded, device))
    run('sdpa_kernels', lambda: sdpa_kernels(models['iclr'], padded, device))
    peaks = run(
        'matmul_peak', lambda: matmul_peak(device, profile['matmul_n'], profile['precisions'])
    ).get('tflops', {})

    swins: Dict[Size, nn.Module] = {}

    def swin(size: Size) -> nn.Module:
        if size not in swins:
            swins[size] = build_swin(size, device)
        return swins[size]

    labels = {
        'CrossFormer-S iclr': lambda size: select_path(models['iclr'], True),
        'CrossFormer-S windowed': lambda size: select_path(models['windowed'], True),
        'Swin-T (timm)': swin,
    }

    def flops() -> dict:
        counts = {}
        for label, get in labels.items():
            for size in profile['timing_sizes']:
                try:
                    model = get(size) if 'Swin' in label else select_path(get(size), False)
                    counts.setdefault(label, {})['x'.join(map(str, size))] = (
                        count_flops(model, size, device) / 1e9
                    )
                except Exception as exc:  # e.g. no timm: the CrossFormer counts go on
                    counts.setdefault('errors', {})[label] = error_record(exc)['error']
        return dict(
            method='torch.utils.flop_counter.FlopCounterMode, explicit attention',
            convention='2 FLOPs per multiply-add; training step = 3x forward',
            gflops_per_image=counts,
        )

    gflops = run('flops', flops).get('gflops_per_image', {})

    def timing() -> dict:
        timer = Timer(device, profile['batch'], profile['warmup'], profile['repeat'], args.budget_s)
        blocks = [
            (precision, size, mode, labels)
            for precision in profile['precisions']
            for size in profile['timing_sizes']
            for mode in ('infer', 'train')
        ]
        fast_ref = {
            FAST: labels['CrossFormer-S iclr'],
            REF: lambda size: select_path(models['iclr'], False),
        }
        blocks += [
            (profile['precisions'][0], profile['timing_sizes'][0], mode, fast_ref)
            for mode in ('infer', 'train')
        ]
        rows, skipped = [], []
        for precision, size, mode, block_models in blocks:
            name = f'{precision} {"x".join(map(str, size))} {mode} {", ".join(block_models)}'
            if not timer.fits(size, mode):
                skipped.append(name)
                log(f'skipped (time budget): {name}')
                continue
            block = timer.time_block(
                {
                    label: (lambda get=get, size=size: get(size))
                    for label, get in block_models.items()
                },
                size,
                mode,
                precision,
            )
            for row in block:
                add_rates(row, gflops, peaks)
                log(
                    f'{precision} {"x".join(map(str, size))} {mode} {row["model"]}: '
                    + (f'{row["median_ms"]:.1f} ms' if 'median_ms' in row else row['error'])
                )
            rows.extend(block)
            sections['timing'] = dict(rows=rows, skipped=skipped, partial=True)
            write_json(results, args.out)
        select_path(models['iclr'], True)
        return dict(
            rows=rows,
            skipped=skipped,
            speedup_fast_vs_ref=speedups(rows),
            method=f'median of {profile["repeat"]} after {profile["warmup"]} warm-up, '
            'models taking turns; fp32 = TF32 off',
        )

    if models:
        run('timing', timing)
    report = markdown_report(results)
    results['markdown'] = report
    write_json(results, args.out)
    print('\n' + report, flush=True)
    for warning in results.get('warnings', []):
        log(f'warning: {warning}')
    log(f'done; results in {args.out}')
    checks_ok = all(sections.get(name, {}).get('ok', False) for name in ('fast_vs_ref', 'autocast'))
    return 0 if checks_ok and not any('error' in s for s in sections.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
