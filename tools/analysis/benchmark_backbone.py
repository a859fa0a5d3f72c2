"""Benchmark the CrossFormer backbone: fast LSDA path vs reference path vs Swin-T.

In one process, on the same weights, the fast path (``use_fused_attn=True``)
and the reference path (``use_fused_attn=False``) of one CrossFormer, and
mmdet's Swin-T backbone (the settings of mmdet's
``swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py``; the peer of similar FLOPs),
are timed at each size, for inference and for a training step
(forward + backward of the summed output means).

Method:

* time: median of ``--repeat`` runs after ``--warmup`` runs; the three
  models take turns inside every repetition, so changes of machine load hit
  them alike. ms/image = time / batch. In inference the fast path reuses its
  cached bias masks after the warm-up (same-size inference, its intended use).
* peak memory, CPU: every (model, size, mode) runs once more in a fresh
  spawned process; the kernel's peak-RSS counter (``VmHWM``) is reset just
  before the step (``/proc/self/clear_refs``) and the peak minus the RSS before
  the step is reported: what the step adds (activations, gradients, caches).
  A fresh process is needed because the allocator keeps freed memory resident.
  GPU: ``torch.cuda.max_memory_allocated()`` minus the memory allocated before the step.
* GFLOPs: ``mmengine.analysis.get_model_complexity_info`` at batch 1, one
  multiply-add counted as one FLOP (the convention of the papers' FLOPs).
  CrossFormer is counted on its reference path: mmengine's JIT counter does
  not see the fused SDPA kernel, and both paths compute the same function.
  Achieved GFLOP/s = GFLOPs per image / s per image; a training step is counted
  as 3x the forward FLOPs (forward + backward, the usual estimate).
* GPU (when CUDA is present): fp16 autocast (AMP), synchronised timings.

Example::

    python tools/analysis/benchmark_backbone.py --sizes 800x1216 512x512 \\
        --repeat 3 --warmup 1 --threads 2 --out work_dirs/benchmark_backbone.json
"""
import argparse
import contextlib
import json
import logging
import os
import os.path as osp
import re
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar, get_installed_path

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.backbones.crossformer import ARCH_SETTINGS
from crossformer_mm.models.layers import LSDA

#: Swin-T as in mmdet's Mask R-CNN Swin-T config (the FLOPs peer of CrossFormer-S).
SWIN_T_CONFIG = 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
#: CrossFormer settings of the detection / segmentation configs.
DENSE_SETTINGS = dict(group_size=(7, 7, 7, 7), crs_interval=(8, 4, 2, 1), drop_path_rate=0.2)
MODES = ('infer', 'train')
MODELS = ('fast', 'ref', 'swin')
TARGETS = dict(infer_speedup=1.5, train_speedup=1.3, memory_ratio=1.0, gflops_ratio_swin=1.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='small', choices=sorted(ARCH_SETTINGS),
                        help='CrossFormer variant (detection settings G=7, I=8,4,2,1)')
    parser.add_argument('--sizes', nargs='+', default=['800x1216', '512x512'],
                        help='input sizes HxW')
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs first')
    parser.add_argument('--batch', type=int, default=1, help='images per step')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'],
                        help="'auto': cuda when available")
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak-memory measurements (fresh processes)')
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


def parse_size(text: str, parser: argparse.ArgumentParser) -> Tuple[int, int]:
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


def build_models(arch: str) -> Tuple[CrossFormer, nn.Module]:
    """One CrossFormer (both paths) and mmdet's Swin-T, randomly initialised."""
    from mmdet.models.backbones import SwinTransformer
    crossformer = CrossFormer(arch=arch, **DENSE_SETTINGS)
    crossformer.init_weights()
    swin_cfg = Config.fromfile(
        osp.join(get_installed_path('mmdet'), '.mim', 'configs', SWIN_T_CONFIG)).model.backbone
    swin_cfg = {k: v for k, v in swin_cfg.items() if k not in ('type', 'init_cfg')}
    swin = SwinTransformer(**dict(swin_cfg, convert_weights=False))
    with quiet_logger():  # 'no pre-trained weights': random weights are intended
        swin.init_weights()
    return crossformer, swin


def select_path(crossformer: CrossFormer, fast: bool) -> CrossFormer:
    """Switch every LSDA of ``crossformer`` to the fast or the reference path."""
    for module in crossformer.modules():
        if isinstance(module, LSDA):
            module.use_fused_attn = fast
    return crossformer


def model_for(name: str, crossformer: CrossFormer, swin: nn.Module) -> nn.Module:
    return swin if name == 'swin' else select_path(crossformer, name == 'fast')


def autocast(device: str):
    if device == 'cuda':
        return torch.autocast('cuda', dtype=torch.float16)
    return contextlib.nullcontext()


def run_step(model: nn.Module, inputs: torch.Tensor, mode: str, device: str):
    """One inference (no grad) or training (forward + backward) step."""
    model.train(mode == 'train')
    if mode == 'infer':
        with torch.no_grad(), autocast(device):
            return model(inputs)
    model.zero_grad(set_to_none=True)
    with autocast(device):
        outs = model(inputs)
    sum(out.float().mean() for out in outs).backward()
    return outs


def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_models(crossformer, swin, inputs, mode, args, progress) -> Dict[str, List[float]]:
    """Seconds per step of each model, the models taking turns."""
    times: Dict[str, List[float]] = {name: [] for name in MODELS}
    for run in range(args.warmup + args.repeat):
        for name in MODELS:
            model = model_for(name, crossformer, swin)
            synchronize(args.device)
            start = time.perf_counter()
            run_step(model, inputs, mode, args.device)
            synchronize(args.device)
            if run >= args.warmup:
                times[name].append(time.perf_counter() - start)
            progress.update()
    return times


def max_output_difference(crossformer, inputs, device) -> float:
    """max |fast - ref| over the backbone outputs (the paths compute the same function)."""
    outs = [run_step(select_path(crossformer, fast), inputs, 'infer', device)
            for fast in (True, False)]
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(*outs))


def count_gflops(model: nn.Module, size: Tuple[int, int], device: str) -> float:
    """mmengine's forward GFLOPs (multiply-adds) of one image."""
    inputs = torch.randn(1, 3, *size, device=device)
    model.eval()
    with torch.no_grad(), quiet_logger():  # mmengine lists every op it does not count
        info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False,
                                         show_arch=False)
    return info['flops'] / 1e9


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        return int(re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M)[1])


def measure_peak_memory(arch: str, name: str, size: Tuple[int, int], mode: str, batch: int,
                        threads: int) -> Optional[float]:
    """MiB a single CPU step adds to the RSS at its peak (run in a fresh process)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    crossformer, swin = build_models(arch)
    model = model_for(name, crossformer, swin)
    inputs = torch.randn(batch, 3, *size)
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
    except OSError:
        return None  # not Linux, or not allowed: no peak-RSS reset
    before = _status_kib('VmRSS')
    run_step(model, inputs, mode, 'cpu')
    return (_status_kib('VmHWM') - before) / 1024


def measure_cuda_memory(model, inputs, mode) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run_step(model, inputs, mode, 'cuda')
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def peak_memories(args, crossformer, swin, logger) -> Dict[Tuple, Optional[float]]:
    """Peak memory of every (model, size, mode)."""
    tasks = [(name, size, mode) for size in args.sizes for mode in args.modes for name in MODELS]
    memories: Dict[Tuple, Optional[float]] = {}
    if args.no_memory:
        return {task: None for task in tasks}
    logger.info(f'peak memory: {len(tasks)} steps, each in a fresh process' if args.device ==
                'cpu' else 'peak memory: torch.cuda.max_memory_allocated')
    progress = ProgressBar(len(tasks))
    if args.device == 'cuda':
        for name, size, mode in tasks:
            inputs = torch.randn(args.batch, 3, *size, device='cuda')
            model = model_for(name, crossformer, swin)
            memories[(name, size, mode)] = measure_cuda_memory(model, inputs, mode)
            progress.update()
    else:  # one fresh interpreter per step (max_tasks_per_child=1)
        with ProcessPoolExecutor(1, mp_context=get_context('spawn'),
                                 max_tasks_per_child=1) as pool:
            for task in tasks:
                name, size, mode = task
                memories[task] = pool.submit(measure_peak_memory, args.arch, name, size, mode,
                                             args.batch, args.threads).result()
                progress.update()
    progress.file.write('\n')
    return memories


def summarise(args, timings, memories, gflops, differences) -> dict:
    """Results per (size, mode, model) and the ratios."""
    labels = dict(fast=f'CrossFormer-{args.arch} fast', ref=f'CrossFormer-{args.arch} ref',
                  swin='Swin-T (mmdet)')
    rows, ratios = [], []
    for size in args.sizes:
        for mode in args.modes:
            per_model = {}
            for name in MODELS:
                seconds = statistics.median(timings[(size, mode)][name]) / args.batch
                flops = gflops[(size, 'swin' if name == 'swin' else 'crossformer')]
                flops *= 3 if mode == 'train' else 1
                per_model[name] = dict(
                    size=list(size), mode=mode, model=labels[name],
                    ms_per_image=1000 * seconds,
                    runs_ms=[1000 * t / args.batch for t in timings[(size, mode)][name]],
                    peak_memory_mib=memories[(name, size, mode)],
                    gflops_per_image=flops, gflops_per_s=flops / seconds)
            rows.extend(per_model.values())
            fast, ref, swin = per_model['fast'], per_model['ref'], per_model['swin']
            memory_ratio = (fast['peak_memory_mib'] / ref['peak_memory_mib']
                            if ref['peak_memory_mib'] else None)
            ratios.append(dict(
                size=list(size), mode=mode,
                speedup_fast_vs_ref=ref['ms_per_image'] / fast['ms_per_image'],
                memory_fast_vs_ref=memory_ratio,
                time_crossformer_fast_vs_swin=fast['ms_per_image'] / swin['ms_per_image'],
                gflops_per_s_crossformer_fast_vs_swin=fast['gflops_per_s'] / swin['gflops_per_s'],
                max_abs_output_difference_fast_vs_ref=differences[size]))
    return dict(rows=rows, ratios=ratios)


def format_report(results: dict) -> str:
    fmt = '{:<10} {:<6} {:<22} {:>9} {:>12} {:>8} {:>9}'
    lines = [fmt.format('size', 'mode', 'model', 'ms/image', 'peak MiB', 'GFLOPs', 'GFLOP/s')]
    for row in results['rows']:
        memory = row['peak_memory_mib']
        lines.append(fmt.format(
            'x'.join(map(str, row['size'])), row['mode'], row['model'],
            f"{row['ms_per_image']:.0f}", '-' if memory is None else f'{memory:.0f}',
            f"{row['gflops_per_image']:.1f}", f"{row['gflops_per_s']:.1f}"))
    lines.append('')
    for ratio in results['ratios']:
        size, mode = 'x'.join(map(str, ratio['size'])), ratio['mode']
        memory = ratio['memory_fast_vs_ref']
        lines.append(
            f"{size} {mode}: fast/ref speed-up {ratio['speedup_fast_vs_ref']:.2f}x, "
            f"memory fast/ref {'-' if memory is None else f'{memory:.2f}'}, "
            'GFLOP/s CrossFormer(fast)/Swin-T '
            f"{ratio['gflops_per_s_crossformer_fast_vs_swin']:.2f}, "
            f"time CrossFormer(fast)/Swin-T {ratio['time_crossformer_fast_vs_swin']:.2f}, "
            f"max|fast-ref| {ratio['max_abs_output_difference_fast_vs_ref']:.1e}")
    return '\n'.join(lines)


def check_targets(results: dict) -> List[str]:
    """The issue's CPU targets at 800x1216 (when measured)."""
    checks = []
    for ratio in results['ratios']:
        if ratio['size'] != [800, 1216]:
            continue
        key = f"{ratio['mode']}_speedup"
        checks.append((f"{ratio['mode']} speed-up fast/ref", ratio['speedup_fast_vs_ref'],
                       '>=', TARGETS[key]))
        if ratio['memory_fast_vs_ref'] is not None:
            checks.append((f"{ratio['mode']} peak memory fast/ref", ratio['memory_fast_vs_ref'],
                           '<=', TARGETS['memory_ratio']))
        if ratio['mode'] == 'infer':
            checks.append(('infer GFLOP/s CrossFormer(fast)/Swin-T',
                           ratio['gflops_per_s_crossformer_fast_vs_swin'], '>=',
                           TARGETS['gflops_ratio_swin']))
    return [f"{name}: {value:.2f} (target {op} {target}) "
            f"{'met' if (value >= target if op == '>=' else value <= target) else 'MISSED'}"
            for name, value, op, target in checks]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logger = MMLogger.get_instance('benchmark_backbone', log_level='INFO')
    load_before = os.getloadavg()
    logger.info(f'torch {torch.__version__}, device {args.device}, threads {args.threads}, '
                f'batch {args.batch}, load average {load_before[0]:.2f}')
    torch.manual_seed(0)
    crossformer, swin = build_models(args.arch)
    crossformer.to(args.device)
    swin.to(args.device)

    logger.info('GFLOPs (mmengine, CrossFormer on its reference path)')
    gflops = {}
    for size in args.sizes:
        gflops[(size, 'crossformer')] = count_gflops(select_path(crossformer, False), size,
                                                     args.device)
        gflops[(size, 'swin')] = count_gflops(swin, size, args.device)

    timings, differences = {}, {}
    logger.info(f'timing: {args.warmup} warm-up + {args.repeat} timed runs per model')
    progress = ProgressBar(len(args.sizes) * len(args.modes) * len(MODELS) *
                           (args.warmup + args.repeat))
    for size in args.sizes:
        inputs = torch.randn(args.batch, 3, *size, device=args.device)
        differences[size] = max_output_difference(crossformer, inputs, args.device)
        for mode in args.modes:
            timings[(size, mode)] = time_models(crossformer, swin, inputs, mode, args, progress)
    progress.file.write('\n')
    memories = peak_memories(args, crossformer, swin, logger)

    results = summarise(args, timings, memories, gflops, differences)
    load_after = os.getloadavg()
    results['env'] = dict(
        torch=torch.__version__, device=args.device, threads=args.threads, batch=args.batch,
        arch=args.arch, repeat=args.repeat, warmup=args.warmup, amp=args.device == 'cuda',
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        load_average_before=load_before, load_average_after=load_after)
    targets = check_targets(results) if args.device == 'cpu' else []
    results['targets'] = targets
    logger.info('\n' + format_report(results) + ''.join('\n' + t for t in targets) +
                f'\nload average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        logger.info(f'results written to {args.out}')


if __name__ == '__main__':
    main()
