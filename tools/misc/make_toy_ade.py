"""Write a small synthetic dataset in the ADE20K (ADEChallengeData2016) layout.

Command line over :func:`crossformer_mm.testing.toy_ade.make_toy_ade` (see its module for the layout).
"""
import argparse
from typing import List, Optional

from crossformer_mm.testing.toy_ade import CLASS_COLOURS, make_toy_ade


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a toy dataset in the ADE20K layout')
    parser.add_argument('out_dir', help='dataset root to create')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    written = make_toy_ade(args.out_dir, args.num_train, args.num_val,
                           args.height, args.width, args.seed)
    names = ', '.join(CLASS_COLOURS)
    print(f'wrote {len(written["training"])} training and '
          f'{len(written["validation"])} validation images of '
          f'{args.height}x{args.width} ({names}) to {args.out_dir}')


if __name__ == '__main__':
    main()
