"""Train a small CrossFormer classifier on real handwritten digits; report top-1.

A learning check of the classification stack: scikit-learn's 1,797 8x8
digit scans (``sklearn.datasets.load_digits``) are written as an
ImageNet-style folder (upsampled to ``--image-size``, fixed split: every 5th
sample is validation; see :mod:`crossformer_mm.testing.toy_digits`), the
published classification config (``configs/crossformer-t_8xb128_in1k.py`` by
default) gets a small CrossFormer and a 10-class head, and mmengine's stock
:class:`~mmengine.runner.Runner` trains it from scratch with mmpretrain.
mmpretrain's ``Accuracy`` scores the validation split; the script exits with
status 1 when the final top-1 is below ``--min-top1``.

Example (README, "Classification": the time and the load average)::

    OMP_NUM_THREADS=2 python tools/misc/train_digits_cls.py --work-dir work_dirs/digits_cls
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

from crossformer_mm.testing.learning_check import train_and_check
from crossformer_mm.testing.toy_configs import cls_learning_config
from crossformer_mm.testing.toy_digits import make_toy_digits

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'crossformer-t_8xb128_in1k.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a small CrossFormer on the scikit-learn digits (CPU)'
    )
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='classification config whose recipe is used'
    )
    parser.add_argument('--work-dir', default='work_dirs/digits_cls')
    parser.add_argument(
        '--data-root',
        default=None,
        help='digits folder (default: WORK_DIR/digits, written when missing)',
    )
    parser.add_argument(
        '--limit', type=int, default=None, help='write only the first N digits (tiny runs)'
    )
    parser.add_argument('--image-size', type=int, default=32)
    parser.add_argument('--embed-dims', type=int, default=32)
    parser.add_argument('--depths', type=int, nargs=4, default=(1, 1, 2, 1))
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--epochs', type=int, default=30)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--log-interval', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--min-top1',
        type=float,
        default=0.95,
        help='fail (exit 1) below this validation top-1 (fraction)',
    )
    args = parser.parse_args(argv)
    if args.data_root is None:
        args.data_root = osp.join(args.work_dir, 'digits')
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    if not osp.isdir(osp.join(args.data_root, 'val')):
        make_toy_digits(args.data_root, args.image_size, limit=args.limit)
    dims = args.embed_dims
    arch = dict(
        embed_dims=dims,
        depths=tuple(args.depths),
        num_heads=tuple(max(1, dims * 2**i // 32) for i in range(4)),
    )
    cfg = cls_learning_config(
        args.config,
        args.data_root,
        args.work_dir,
        args.image_size,
        arch,
        args.batch_size,
        args.epochs,
        args.lr,
        args.log_interval,
        args.seed,
    )
    # mmpretrain's Accuracy reports percentages
    return train_and_check(
        cfg,
        'accuracy/top1',
        'digits val top-1',
        f'{args.epochs} epochs',
        args.min_top1,
        '--min-top1',
        scale=0.01,
    )


if __name__ == '__main__':
    main()
