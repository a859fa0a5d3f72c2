"""Train a small CrossFormer UPerNet on toy ADE20K data on CPU; report mIoU.

A learning check of the segmentation stack: the published UPerNet config
(``configs/upernet_crossformer_s_512x512_160k_ade20k.py`` by default) is
pointed at the toy data of ``tools/misc/make_toy_data.py ade`` (written first if
``--data-root`` holds none), its backbone and heads are shrunk, and mmengine's
stock :class:`~mmengine.runner.Runner` trains it from scratch. mmseg's
``IoUMetric`` scores the toy validation split; the script exits with status 1
when the final mIoU is below ``--min-miou``.

Example (about 2.5 minutes on 2 shared CPU cores, where one thread per process
is the fastest setting)::

    OMP_NUM_THREADS=1 python tools/misc/train_toy_seg.py \
        --work-dir work_dirs/toy_seg
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

from crossformer_mm.testing.learning_check import train_and_check
from crossformer_mm.testing.toy_ade import make_toy_ade
from crossformer_mm.testing.toy_configs import seg_learning_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'upernet_crossformer_s_512x512_160k_ade20k.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a small CrossFormer UPerNet on toy ADE20K data'
    )
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='ADE20K config whose recipe is shrunk'
    )
    parser.add_argument('--work-dir', default='work_dirs/toy_seg')
    parser.add_argument(
        '--data-root',
        default=None,
        help='toy dataset (default: WORK_DIR/toy_ade, written when missing)',
    )
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=(96, 128),
        metavar=('H', 'W'),
        help='toy image size',
    )
    parser.add_argument(
        '--crop-size',
        type=int,
        nargs=2,
        default=(64, 64),
        metavar=('H', 'W'),
        help='training crop size',
    )
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--val-interval', type=int, default=100)
    parser.add_argument('--log-interval', type=int, default=50)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--min-miou', type=float, default=0.6, help='fail (exit 1) below this mIoU (fraction)'
    )
    args = parser.parse_args(argv)
    if args.data_root is None:
        args.data_root = osp.join(args.work_dir, 'toy_ade')
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    if not osp.isdir(osp.join(args.data_root, 'images', 'training')):
        height, width = args.image_size
        make_toy_ade(args.data_root, args.num_train, args.num_val, height, width, args.seed)
    cfg = seg_learning_config(
        args.config,
        args.data_root,
        args.work_dir,
        min(args.image_size),
        args.crop_size,
        args.batch_size,
        args.iters,
        args.val_interval,
        args.log_interval,
        args.lr,
        args.seed,
    )
    # IoUMetric reports percentages
    return train_and_check(
        cfg,
        'mIoU',
        'toy ADE20K val mIoU',
        f'{args.iters} iterations',
        args.min_miou,
        '--min-miou',
        scale=0.01,
    )


if __name__ == '__main__':
    main()
