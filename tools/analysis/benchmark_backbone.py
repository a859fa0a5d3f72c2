"""Benchmark the CrossFormer backbone against its reference path, Swin-T and the matmul rate.

In one process, at each size, for inference and for a training step
(forward + backward of the summed output means), these variants take turns:

* ``fast``: CrossFormer (``lda_mode='iclr'``, the released det/seg setting),
  fused path (``use_fused_attn=True``: SDPA, and oneDNN's linear on CPU), fp32;
* ``ref``: the same module on the reference path (``use_fused_attn=False``);
* ``windowed``: CrossFormer with ``lda_mode='windowed'`` (same weights), fast path;
* ``swin``: mmdet's Swin-T backbone, the settings of mmdet's
  ``swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py`` (the peer of similar FLOPs);
* ``bf16``: inference with the weights and the input in bf16
  (``model.to(torch.bfloat16)``); training under bf16 autocast (fp32 weights);
* ``compiled``: inference of ``torch.compile(model)`` (inductor, with
  ``freezing``, its CPU inference setting), fp32;
* ``onnxruntime``: inference of the ``fast`` model exported to ONNX (the dynamo
  exporter, at each size) in ONNX Runtime's CPU execution provider, the same
  threads, graph optimisations on (:mod:`crossformer_mm.deployment`); needs
  ``onnx``, ``onnxruntime``, ``onnxscript`` (skipped with ``--no-onnx``).

Method:

* time: median of ``--repeat`` runs after ``--warmup`` runs; the variants
  take turns inside every repetition, so changes of machine load hit them
  alike. ms/image = time / batch. In inference the fast path reuses its
  cached bias masks after the warm-up (same-size inference, its intended use).
* matmul rate: the ``4096 x 4096 x 4096`` fp32 and bf16 products on the same
  threads, in the same run: the ceiling the achieved rates are set against.
* GFLOPs: ``mmengine.analysis.get_model_complexity_info`` at batch 1, one
  multiply-add counted as one FLOP (the papers' convention), so GFLOP/s and the
  matmul rate (G multiply-adds/s) compare directly. CrossFormer is counted on
  its reference path (mmengine's JIT counter does not see the fused SDPA
  kernel; both paths compute the same function), each ``lda_mode`` apart. A
  training step counts 3x the forward.
* accuracy: max|fast - ref| over the outputs; bf16 against the fp32 fast
  path, per stage, as max|bf16 - fp32| / max|fp32|.
* onnxruntime: per stage max|ort - fast| / max|fast|.
* compile: graph breaks from ``torch._dynamo.explain`` (train, ``no_grad``,
  ``inference_mode``) at the first size; compiled frames per size (1 = no
  recompile after the first call).
* peak memory, CPU: every (fp32 variant, size, mode) runs once more in a fresh
  spawned process; the kernel's peak-RSS counter (``VmHWM``) is reset just
  before the step (``/proc/self/clear_refs``) and the peak minus the RSS before
  the step is reported: what the step adds (activations, gradients, caches).
  GPU: ``torch.cuda.max_memory_allocated()`` minus the memory allocated before.
* GPU (when CUDA is present): the fp32 variants run under fp16 autocast (AMP),
  synchronised; the targets are CPU targets and are not checked.

Example::

    python tools/analysis/benchmark_backbone.py --sizes 800x1216 512x512 \\
        --repeat 3 --warmup 1 --threads 2 --out work_dirs/benchmark_backbone.json
"""

import argparse
import contextlib
import copy
import json
import logging
import os
import os.path as osp
import re
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch._dynamo as dynamo
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar, get_installed_path
from torch._dynamo.testing import CompileCounterWithBackend

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.backbones.crossformer import ARCH_SETTINGS
from crossformer_mm.utils.benchmark import (
    DENSE_SETTINGS,
    cpu_model,
    select_path,
    synchronize,
    time_matmul,
)

Size = Tuple[int, int]
#: Swin-T as in mmdet's Mask R-CNN Swin-T config (the FLOPs peer of CrossFormer-S).
SWIN_T_CONFIG = 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
MODES = ('infer', 'train')
VARIANTS = ('fast', 'ref', 'windowed', 'swin', 'bf16', 'compiled', 'onnxruntime')
FP32_VARIANTS = ('fast', 'ref', 'windowed', 'swin')
MATMUL_SIZE = 4096
GRAD_MODES = dict(
    train=(True, torch.enable_grad),
    no_grad=(False, torch.no_grad),
    inference_mode=(False, torch.inference_mode),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--arch',
        default='small',
        choices=sorted(ARCH_SETTINGS),
        help='CrossFormer variant (detection settings G=7, I=8,4,2,1)',
    )
    parser.add_argument(
        '--sizes', nargs='+', default=['800x1216', '512x512'], help='input sizes HxW'
    )
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs first')
    parser.add_argument('--batch', type=int, default=1, help='images per step')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument(
        '--device',
        default='auto',
        choices=['auto', 'cpu', 'cuda'],
        help="'auto': cuda when available",
    )
    parser.add_argument(
        '--no-compile',
        action='store_true',
        help='skip the torch.compile row and checks (about a minute per size)',
    )
    parser.add_argument(
        '--no-onnx', action='store_true', help='skip the ONNX Runtime row (an ONNX export per size)'
    )
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='skip the peak-memory measurements (fresh processes)',
    )
    parser.add_argument('--out', help='write the results to this json file')
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 1:
        parser.error('--repeat, --batch and --threads must be >= 1 and --warmup >= 0')
    args.sizes = [parse_size(s, parser) for s in args.sizes]
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    elif args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available (use --device cpu)')
    return args


def parse_size(text: str, parser: argparse.ArgumentParser) -> Size:
    match = re.fullmatch(r'(\d+)x(\d+)', text)
    if not match or min(int(match[1]), int(match[2])) < 32:
        parser.error(f'--sizes: expected HxW with H, W >= 32 (e.g. 800x1216), got {text!r}')
    return int(match[1]), int(match[2])


@contextlib.contextmanager
def quiet_logger(level: int = logging.ERROR):
    """Silence mmengine's current logger below ``level``."""
    logger = MMLogger.get_current_instance()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def build_swin() -> nn.Module:
    """mmdet's Swin-T backbone, randomly initialised."""
    from mmdet.models.backbones import SwinTransformer

    cfg = Config.fromfile(
        osp.join(get_installed_path('mmdet'), '.mim', 'configs', SWIN_T_CONFIG)
    ).model.backbone
    cfg = {k: v for k, v in cfg.items() if k not in ('type', 'init_cfg')}
    swin = SwinTransformer(**dict(cfg, convert_weights=False))
    with quiet_logger():  # 'no pre-trained weights': random weights are intended
        swin.init_weights()
    return swin


def build_crossformers(arch: str) -> Tuple[CrossFormer, CrossFormer]:
    """CrossFormer in 'iclr' and in 'windowed' mode with the same random weights."""
    iclr = CrossFormer(arch=arch, lda_mode='iclr', **DENSE_SETTINGS)
    iclr.init_weights()
    windowed = CrossFormer(arch=arch, lda_mode='windowed', **DENSE_SETTINGS)
    windowed.load_state_dict(iclr.state_dict())
    return iclr, windowed


class Variants:
    """The benchmarked models, and one step of each variant."""

    def __init__(
        self,
        arch: str,
        device: str,
        compile_models: bool,
        threads: int = 2,
        onnx_dir: Optional[str] = None,
    ) -> None:
        self.device = device
        self.threads = threads
        self.onnx_dir = onnx_dir  # None: no ONNX Runtime row
        self.ort_sessions: Dict[Size, object] = {}
        self.iclr, self.windowed = (m.to(device) for m in build_crossformers(arch))
        self.swin = build_swin().to(device)
        self.bf16 = copy.deepcopy(self.iclr).to(torch.bfloat16)
        self.compile_counter = None
        self.compiled = None
        if compile_models:
            torch._inductor.config.freezing = True  # constant weights: folded, prepacked
            self.compile_counter = CompileCounterWithBackend('inductor')
            self.compiled = torch.compile(
                copy.deepcopy(self.iclr).eval(), dynamic=False, backend=self.compile_counter
            )
        self.amp = torch.float16 if device == 'cuda' else None

    def names(self, mode: str) -> List[str]:
        return [
            name
            for name in VARIANTS
            if not (name == 'compiled' and (self.compiled is None or mode != 'infer'))
            and not (name == 'onnxruntime' and (self.onnx_dir is None or mode != 'infer'))
        ]

    def ort_session(self, size: Size):
        """The ONNX Runtime session of the fast model exported at ``size`` (made once)."""
        if size not in self.ort_sessions:
            from crossformer_mm.deployment import export_onnx, ort_session

            path = osp.join(self.onnx_dir, f'crossformer_{size[0]}x{size[1]}.onnx')
            model = select_path(copy.deepcopy(self.iclr).cpu().eval(), True)
            with quiet_logger():
                export_onnx(model, torch.randn(1, 3, *size), path, dynamic=False)
            self.ort_sessions[size] = ort_session(path, self.threads)
        return self.ort_sessions[size]

    def step(self, name: str, inputs: torch.Tensor, mode: str) -> Tuple[torch.Tensor, ...]:
        """One inference (no grad) or training (forward + backward) step of ``name``."""
        if name == 'bf16':
            if mode == 'infer':
                return run_step(self.bf16, inputs.to(torch.bfloat16), mode)
            return run_step(select_path(self.iclr, True), inputs, mode, torch.bfloat16)
        if name == 'compiled':
            return run_step(self.compiled, inputs, mode)
        if name == 'onnxruntime':
            from crossformer_mm.deployment import run_ort

            session = self.ort_session(tuple(inputs.shape[-2:]))
            return tuple(torch.from_numpy(out) for out in run_ort(session, inputs))
        model = dict(fast=self.iclr, ref=self.iclr, windowed=self.windowed, swin=self.swin)[name]
        if name in ('fast', 'ref'):
            select_path(model, name == 'fast')
        return run_step(model, inputs, mode, self.amp)


def run_step(
    model: nn.Module, inputs: torch.Tensor, mode: str, autocast: Optional[torch.dtype] = None
) -> Tuple[torch.Tensor, ...]:
    """One inference (no grad) or training (forward + backward) step, optionally under autocast."""
    context = (
        torch.autocast(inputs.device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    )
    model.train(mode == 'train')
    if mode == 'infer':
        with torch.no_grad(), context:
            return model(inputs)
    model.zero_grad(set_to_none=True)
    with context:
        outs = model(inputs)
    sum(out.float().mean() for out in outs).backward()
    return outs


def time_variants(
    variants: Variants, inputs: torch.Tensor, mode: str, args, progress: ProgressBar
) -> Dict[str, List[float]]:
    """Seconds per step of each variant, the variants taking turns."""
    names = variants.names(mode)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for run in range(args.warmup + args.repeat):
        for name in names:
            synchronize(args.device)
            start = time.perf_counter()
            variants.step(name, inputs, mode)
            synchronize(args.device)
            if run >= args.warmup:
                times[name].append(time.perf_counter() - start)
            progress.update()
    return times


def relative_error(outs: Tuple[torch.Tensor, ...], refs: Tuple[torch.Tensor, ...]) -> List[float]:
    """Per stage max|out - ref| / max|ref| (inf where ``out`` is not finite)."""
    return [
        float((o.float() - r).abs().max() / r.abs().max())
        if torch.isfinite(o).all()
        else float('inf')
        for o, r in zip(outs, refs)
    ]


def accuracy(variants: Variants, inputs: torch.Tensor) -> dict:
    """max|fast - ref|, the bf16 errors per stage, and finiteness of a bf16 training step."""
    fast = variants.step('fast', inputs, 'infer')
    ref = variants.step('ref', inputs, 'infer')
    bf16_outs = variants.step('bf16', inputs, 'train')
    grads_finite = all(
        torch.isfinite(p.grad).all() for p in variants.iclr.parameters() if p.grad is not None
    )
    result = dict(
        max_abs_fast_vs_ref=max(float((a - b).abs().max()) for a, b in zip(fast, ref)),
        bf16_infer_relative_error=relative_error(variants.step('bf16', inputs, 'infer'), fast),
        bf16_train_finite=bool(grads_finite and all(torch.isfinite(o).all() for o in bf16_outs)),
    )
    if variants.compiled is not None:
        result['compiled_relative_error'] = relative_error(
            variants.step('compiled', inputs, 'infer'), fast
        )
    if variants.onnx_dir is not None:
        result['onnxruntime_relative_error'] = relative_error(
            variants.step('onnxruntime', inputs, 'infer'), fast
        )
    return result


def graph_breaks(model: nn.Module, inputs: torch.Tensor) -> Dict[str, int]:
    """``torch._dynamo.explain`` graph breaks of ``model`` in each grad mode."""
    breaks = {}
    for name, (train, context) in GRAD_MODES.items():
        model.train(train)
        dynamo.reset()
        with context():
            breaks[name] = dynamo.explain(model)(inputs).graph_break_count
    dynamo.reset()
    return breaks


def count_gflops(model: nn.Module, size: Size, device: str) -> float:
    """mmengine's forward GFLOPs (multiply-adds) of one image."""
    inputs = torch.randn(1, 3, *size, device=device)
    model.eval()
    with torch.no_grad(), quiet_logger():  # mmengine lists every op it does not count
        info = get_model_complexity_info(model, inputs=(inputs,), show_table=False, show_arch=False)
    return info['flops'] / 1e9


def matmul_rates(device: str) -> Dict[str, float]:
    """G multiply-adds/s of the fp32 and bf16 ``4096^3`` products."""
    return {
        name: MATMUL_SIZE**3 / time_matmul(MATMUL_SIZE, dtype, device) / 1e9
        for name, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16))
    }


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        return int(re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M)[1])


def measure_peak_memory(
    arch: str, name: str, size: Size, mode: str, batch: int, threads: int
) -> Optional[float]:
    """MiB a single CPU step of an fp32 variant adds to the RSS at its peak
    (run in a fresh process)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    iclr, windowed = build_crossformers(arch)
    model = dict(fast=iclr, ref=iclr, windowed=windowed)[name] if name != 'swin' else build_swin()
    if name in ('fast', 'ref'):
        select_path(model, name == 'fast')
    inputs = torch.randn(batch, 3, *size)
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
    except OSError:
        return None  # not Linux, or not allowed: no peak-RSS reset
    before = _status_kib('VmRSS')
    run_step(model, inputs, mode)
    return (_status_kib('VmHWM') - before) / 1024


def measure_cuda_memory(step: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def peak_memories(args, variants: Variants, logger) -> Dict[Tuple, Optional[float]]:
    """Peak memory of every (fp32 variant, size, mode)."""
    tasks = [
        (name, size, mode) for size in args.sizes for mode in args.modes for name in FP32_VARIANTS
    ]
    if args.no_memory:
        return {}
    logger.info(
        f'peak memory: {len(tasks)} steps, each in a fresh process'
        if args.device == 'cpu'
        else 'peak memory: torch.cuda.max_memory_allocated'
    )
    memories: Dict[Tuple, Optional[float]] = {}
    progress = ProgressBar(len(tasks))
    if args.device == 'cuda':
        for name, size, mode in tasks:
            inputs = torch.randn(args.batch, 3, *size, device='cuda')
            memories[(name, size, mode)] = measure_cuda_memory(
                lambda name=name, inputs=inputs, mode=mode: variants.step(name, inputs, mode)
            )
            progress.update()
    else:  # one fresh interpreter per step (max_tasks_per_child=1)
        with ProcessPoolExecutor(1, mp_context=get_context('spawn'), max_tasks_per_child=1) as pool:
            for task in tasks:
                name, size, mode = task
                memories[task] = pool.submit(
                    measure_peak_memory, args.arch, name, size, mode, args.batch, args.threads
                ).result()
                progress.update()
    progress.file.write('\n')
    return memories


LABELS = dict(
    fast='{arch} iclr fast',
    ref='{arch} iclr reference',
    windowed='{arch} windowed fast',
    swin='Swin-T (mmdet)',
    bf16='{arch} iclr bf16',
    compiled='{arch} iclr compiled',
    onnxruntime='{arch} iclr ONNX Runtime (CPU EP)',
)
FLOPS_OF = dict(
    fast='iclr',
    ref='iclr',
    bf16='iclr',
    compiled='iclr',
    onnxruntime='iclr',
    windowed='windowed',
    swin='swin',
)


def summarise(args, timings, memories, gflops) -> List[dict]:
    """One row per (size, mode, variant)."""
    rows = []
    arch = f'CrossFormer-{args.arch}'
    for (size, mode), per_variant in timings.items():
        for name, runs in per_variant.items():
            seconds = statistics.median(runs) / args.batch
            flops = gflops[(size, FLOPS_OF[name])] * (3 if mode == 'train' else 1)
            rows.append(
                dict(
                    size=list(size),
                    mode=mode,
                    variant=name,
                    model=LABELS[name].format(arch=arch)
                    + (
                        ' (weights)'
                        if name == 'bf16' and mode == 'infer'
                        else ' (autocast)'
                        if name == 'bf16'
                        else ''
                    ),
                    ms_per_image=1000 * seconds,
                    runs_ms=[1000 * t / args.batch for t in runs],
                    peak_memory_mib=memories.get((name, size, mode)),
                    gflops_per_image=flops,
                    gflops_per_s=flops / seconds,
                )
            )
    return rows


def check_targets(results: dict) -> List[dict]:
    """The CPU targets, from the rows, the matmul rates and the checks."""
    rows = {(tuple(r['size']), r['mode'], r['variant']): r for r in results['rows']}
    checks = []

    def add(name: str, value: Optional[float], op: str, target: float) -> None:
        if value is not None:
            met = value >= target if op == '>=' else value <= target
            checks.append(dict(name=name, value=value, op=op, target=target, met=bool(met)))

    def ms(size, mode, variant) -> Optional[float]:
        row = rows.get((size, mode, variant))
        return row['ms_per_image'] if row else None

    def ratio(size, mode, slow, fast) -> Optional[float]:
        a, b = ms(size, mode, slow), ms(size, mode, fast)
        return a / b if a and b else None

    for size, checked in results['checks'].items():
        size = tuple(int(v) for v in size.split('x'))
        tag = 'x'.join(map(str, size))
        add(f'{tag} max|fast - ref| (fp32 outputs)', checked['max_abs_fast_vs_ref'], '<=', 1e-5)
        for mode in MODES:
            fast, ref = rows.get((size, mode, 'fast')), rows.get((size, mode, 'ref'))
            if fast and ref and fast['peak_memory_mib'] and ref['peak_memory_mib']:
                add(
                    f'{tag} {mode} peak memory fast / ref',
                    fast['peak_memory_mib'] / ref['peak_memory_mib'],
                    '<=',
                    1.0,
                )
        if size == (800, 1216):
            add(
                '800x1216 infer eager fast / ref speed-up',
                ratio(size, 'infer', 'ref', 'fast'),
                '>=',
                2.0,
            )
            add(
                '800x1216 train windowed speed / Swin-T speed',
                ratio(size, 'train', 'swin', 'windowed'),
                '>=',
                1.0,
            )
            add(
                '800x1216 infer compiled / eager speed-up',
                ratio(size, 'infer', 'fast', 'compiled'),
                '>=',
                1.0,
            )
            add(
                '800x1216 infer ONNX Runtime / eager speed-up',
                ratio(size, 'infer', 'fast', 'onnxruntime'),
                '>=',
                1.2,
            )
            add(
                '800x1216 infer bf16 max per-stage error / max|fp32|',
                max(checked['bf16_infer_relative_error']),
                '<=',
                2e-2,
            )
            add(
                '800x1216 train bf16 finite (1 = yes)', float(checked['bf16_train_finite']), '>=', 1
            )
        if 'onnxruntime_relative_error' in checked:
            add(
                f'{tag} ONNX Runtime max per-stage error / max|fast|',
                max(checked['onnxruntime_relative_error']),
                '<=',
                1e-4,
            )
        if 'compiled_frames' in checked:
            add(f'{tag} compiled frames (1 = no recompile)', checked['compiled_frames'], '<=', 1)
    for mode, count in results.get('graph_breaks', {}).items():
        add(f'graph breaks ({mode})', count, '<=', 0)
    return checks


def _short(value) -> str:
    if isinstance(value, list):
        return '[' + ', '.join(map(_short, value)) + ']'
    return f'{value:.2g}' if isinstance(value, float) else str(value)


def format_report(results: dict) -> str:
    fmt = '{:<10} {:<6} {:<44} {:>9} {:>9} {:>8} {:>9}'
    lines = [fmt.format('size', 'mode', 'model', 'ms/image', 'peak MiB', 'GFLOPs', 'GFLOP/s')]
    for row in results['rows']:
        memory = row['peak_memory_mib']
        lines.append(
            fmt.format(
                'x'.join(map(str, row['size'])),
                row['mode'],
                row['model'],
                f'{row["ms_per_image"]:.0f}',
                '-' if memory is None else f'{memory:.0f}',
                f'{row["gflops_per_image"]:.1f}',
                f'{row["gflops_per_s"]:.1f}',
            )
        )
    lines.append(
        'matmul 4096^3 on the same threads: '
        + ', '.join(
            f'{name} {rate:.1f} G multiply-adds/s' for name, rate in results['matmul_gmacs'].items()
        )
    )
    for size, checked in results['checks'].items():
        lines.append(
            f'{size}: ' + ', '.join(f'{key} {_short(value)}' for key, value in checked.items())
        )
    if results.get('graph_breaks'):
        lines.append(f'graph breaks: {results["graph_breaks"]}')
    for check in results['targets']:
        lines.append(
            f'{check["name"]}: {check["value"]:.3g} (target {check["op"]} '
            f'{check["target"]:g}) {"met" if check["met"] else "MISSED"}'
        )
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logger = MMLogger.get_instance('benchmark_backbone', log_level='INFO')
    load_before = os.getloadavg()
    logger.info(
        f'torch {torch.__version__}, device {args.device}, threads {args.threads}, '
        f'batch {args.batch}, load average {load_before[0]:.2f}'
    )
    torch.manual_seed(0)
    onnx_dir = None
    if not args.no_onnx:
        onnx_dir = tempfile.mkdtemp(prefix='benchmark_onnx_')
        logger.info(f'ONNX Runtime row: one ONNX export per size into {onnx_dir}')
    variants = Variants(
        args.arch,
        args.device,
        compile_models=not args.no_compile,
        threads=args.threads,
        onnx_dir=onnx_dir,
    )

    logger.info('GFLOPs (mmengine, CrossFormer on its reference path)')
    gflops = {}
    for size in args.sizes:
        for key, model in (('iclr', variants.iclr), ('windowed', variants.windowed)):
            select_path(model, False)
            gflops[(size, key)] = count_gflops(model, size, args.device)
            select_path(model, True)
        gflops[(size, 'swin')] = count_gflops(variants.swin, size, args.device)

    results: dict = dict(checks={})
    if not args.no_compile:
        logger.info('graph breaks (torch._dynamo.explain) at the first size')
        results['graph_breaks'] = graph_breaks(
            variants.iclr, torch.randn(args.batch, 3, *args.sizes[0], device=args.device)
        )

    logger.info(f'timing: {args.warmup} warm-up + {args.repeat} timed runs per variant')
    progress = ProgressBar(
        len(args.sizes)
        * sum(len(variants.names(m)) for m in args.modes)
        * (args.warmup + args.repeat)
    )
    timings = {}
    for size in args.sizes:
        inputs = torch.randn(args.batch, 3, *size, device=args.device)
        frames_before = variants.compile_counter.frame_count if variants.compile_counter else 0
        checked = accuracy(variants, inputs)  # compiles the size first, when compiling
        for mode in args.modes:
            timings[(size, mode)] = time_variants(variants, inputs, mode, args, progress)
        if variants.compiled is not None:
            checked['compiled_frames'] = variants.compile_counter.frame_count - frames_before
        results['checks']['x'.join(map(str, size))] = checked
    progress.file.write('\n')
    results['matmul_gmacs'] = matmul_rates(args.device)
    memories = peak_memories(args, variants, logger)

    results['rows'] = summarise(args, timings, memories, gflops)
    load_after = os.getloadavg()
    results['env'] = dict(
        torch=torch.__version__,
        device=args.device,
        threads=args.threads,
        batch=args.batch,
        arch=args.arch,
        repeat=args.repeat,
        warmup=args.warmup,
        amp=args.device == 'cuda',
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu_model=cpu_model(),
        load_average_before=load_before,
        load_average_after=load_after,
    )
    results['targets'] = check_targets(results) if args.device == 'cpu' else []
    logger.info(
        '\n'
        + format_report(results)
        + f'\nload average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}'
    )
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        logger.info(f'results written to {args.out}')
    if onnx_dir is not None:
        shutil.rmtree(onnx_dir, ignore_errors=True)


if __name__ == '__main__':
    main()
