"""Images/s of a classification config's model, like the original ``main.py --throughput``.

    python tools/analysis/cls_throughput.py configs/crossformer-s_8xb128_in1k.py \
        --batch-size 64 [--device cuda] [--warmup 50] [--iters 30] [--image-size 224]

Builds ``cfg.model`` (random weights: speed does not depend on them), runs
``--warmup`` forward passes of a random (B, 3, S, S) batch, then times
``--iters`` more (the original: 50 and 30) and prints
``throughput: N images/s``. On CUDA the device is synchronised before each clock.
"""

import argparse

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def parse_args():
    parser = argparse.ArgumentParser(description='Classifier inference throughput')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=50, help='untimed batches first')
    parser.add_argument('--iters', type=int, default=30, help='timed batches')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='config overrides, key=value'
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)  # custom_imports registers the CrossFormer parts
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from crossformer_mm.classification.throughput import measure_throughput

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS

    model = MODELS.build(cfg.model)
    result = measure_throughput(
        model, args.batch_size, args.image_size, args.warmup, args.iters, args.device
    )
    print(
        f'{args.config}: batch {args.batch_size}, {args.image_size}x{args.image_size}, '
        f'{args.device}, {args.iters} batches after {args.warmup} warm-up: '
        f'throughput: {result["images_per_s"]:.1f} images/s'
    )


if __name__ == '__main__':
    main()
