"""`make demo`: toy data -> train -> test --eval bbox segm -> picture.

    python tools/demo/run_demo.py [--work-dir work_dirs/demo]
        [--data-root data/toy_coco] [--min-box-ap 0.5]

1. ``tools/misc/make_toy_data.py coco`` writes the toy shapes set (200 train /
   50 val images with instance masks).
2. ``tools/train.py`` trains the small CrossFormer Mask R-CNN of
   ``configs/demo/mask_rcnn_crossformer_mini_fpn_toy.py`` from scratch with
   the stock mmengine runner (progress in the log every 10 iterations).
3. ``tools/test.py ... --eval bbox segm`` evaluates the final checkpoint on
   the val split with pycocotools.
4. ``tools/misc/visualize_predictions.py`` draws predictions on 8 val images
   into ``<work-dir>/predictions.png``.

Exits with status 1 when the box AP is below ``--min-box-ap``. Each step is
a separate process, exactly as a user would run it; the CPU thread count
defaults to 1 (set OMP_NUM_THREADS to change it), which is the fastest
setting on a shared 2-core machine.
"""

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

from crossformer_mm.testing.toy_configs import det_data_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'mask_rcnn_crossformer_mini_fpn_toy.py')


def run(step: str, args: list) -> None:
    """Run a tool of this repository as its own process; fail loudly."""
    print(f'\n==> [demo] {step}\n    python {" ".join(args)}', flush=True)
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f'[demo] step "{step}" failed with exit code {result.returncode}')


def latest_metrics(work_dir: str) -> dict:
    """Metrics of the newest test run in ``work_dir`` (mmengine's json)."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not runs:
        sys.exit(f'[demo] no metrics json found under {work_dir}')
    with open(runs[-1]) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy_coco')
    parser.add_argument('--min-box-ap', type=float, default=0.5)
    args = parser.parse_args()
    work_dir = osp.abspath(args.work_dir)
    data_root = osp.abspath(args.data_root) + '/'
    data_options = det_data_options(data_root)
    start = time.time()

    run('generate the toy COCO set', ['tools/misc/make_toy_data.py', 'coco', data_root])
    run(
        'train a small CrossFormer Mask R-CNN (stock mmengine runner)',
        ['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options', *data_options],
    )
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()  # written by mmengine's CheckpointHook
    run(
        'evaluate: tools/test.py --eval bbox segm',
        [
            'tools/test.py',
            CONFIG,
            checkpoint,
            '--eval',
            'bbox',
            'segm',
            '--work-dir',
            osp.join(work_dir, 'test'),
            '--cfg-options',
            *data_options,
        ],
    )
    picture = osp.join(work_dir, 'predictions.png')
    run(
        'draw predictions on val images',
        [
            'tools/misc/visualize_predictions.py',
            CONFIG,
            checkpoint,
            osp.join(data_root, 'val'),
            '--out',
            picture,
            '--num',
            '8',
            '--upscale',
            '3',
        ],
    )

    metrics = latest_metrics(osp.join(work_dir, 'test'))
    box_ap, mask_ap = metrics['coco/bbox_mAP'], metrics['coco/segm_mAP']
    print(
        f'\n[demo] toy val split: box AP {box_ap:.3f}, '
        f'mask AP {mask_ap:.3f} (box AP@50 {metrics["coco/bbox_mAP_50"]:.3f})'
        f'\n[demo] predictions drawn to {picture}'
        f'\n[demo] wall time {(time.time() - start) / 60:.1f} min'
    )
    if box_ap < args.min_box_ap:
        sys.exit(f'[demo] box AP {box_ap:.3f} is below {args.min_box_ap}')


if __name__ == '__main__':
    main()
