"""Write one of the toy data sets of the tests, `make demo` and the learning checks.

    python tools/misc/make_toy_data.py coco data/toy_coco            # shapes, masks (mmdet)
    python tools/misc/make_toy_data.py ade data/toy_ade              # ADE20K layout (mmseg)
    python tools/misc/make_toy_data.py coco-keypoints data/toy_kpt   # 17 joints (mmpose)
    python tools/misc/make_toy_data.py crowdpose data/toy_crowdpose  # 14 joints (mmpose)
    python tools/misc/make_toy_data.py digits data/toy_digits        # digits (mmpretrain)

Each is a command line over the writer in ``crossformer_mm/testing/`` (its module
docstring describes the layout); ``KIND --help`` lists the options.
"""

import argparse
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    kinds = parser.add_subparsers(dest='kind', required=True, metavar='KIND')

    def kind(name: str, help: str, num_train: int, **splits: int) -> argparse.ArgumentParser:
        sub = kinds.add_parser(name, help=help)
        sub.add_argument('out_dir', help='folder to write the data set to')
        if num_train:
            sub.add_argument('--num-train', type=int, default=num_train)
        for split, default in splits.items():
            sub.add_argument(f'--num-{split}', type=int, default=default)
        sub.add_argument('--seed', type=int, default=0)
        return sub

    kind('coco', 'coloured shapes with instance masks (COCO instances)', 200, val=50).add_argument(
        '--size', type=int, default=128, help='image side'
    )
    ade = kind('ade', 'scenes in the ADE20K layout', 40, val=10)
    ade.add_argument('--height', type=int, default=96)
    ade.add_argument('--width', type=int, default=128)
    kind(
        'coco-keypoints', 'stick figures with the 17 COCO joints, crowds', 200, val=40
    ).add_argument('--size', type=int, default=256, help='short image side')
    kind(
        'crowdpose', 'stick figures with the 14 CrowdPose joints, crowdIndex', 200, test=40
    ).add_argument('--size', type=int, default=256, help='short image side')
    digits = kinds.add_parser('digits', help="scikit-learn's digits as an ImageNet-style folder")
    digits.add_argument('out_dir', help='folder to write the data set to')
    digits.add_argument('--size', type=int, default=32, help='image side (>= 32)')
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        write(args)
    except ValueError as error:  # a bad size or count: say which, no traceback
        parser.error(f'{args.kind}: {error}')


def write(args: argparse.Namespace) -> None:
    if args.kind == 'coco':
        from crossformer_mm.testing.toy_coco import make_toy_coco

        make_toy_coco(args.out_dir, args.num_train, args.num_val, args.size, args.seed)
    elif args.kind == 'ade':
        from crossformer_mm.testing.toy_ade import CLASS_COLOURS, make_toy_ade

        written = make_toy_ade(
            args.out_dir, args.num_train, args.num_val, args.height, args.width, args.seed
        )
        print(
            f'wrote {len(written["training"])} training and {len(written["validation"])} '
            f'validation images of {args.height}x{args.width} ({", ".join(CLASS_COLOURS)}) '
            f'to {args.out_dir}'
        )
    elif args.kind == 'coco-keypoints':
        from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints

        make_toy_coco_keypoints(args.out_dir, args.num_train, args.num_val, args.size, args.seed)
    elif args.kind == 'crowdpose':
        from crossformer_mm.testing.toy_crowdpose import make_toy_crowdpose

        make_toy_crowdpose(args.out_dir, args.num_train, args.num_test, args.size, args.seed)
    else:
        from crossformer_mm.testing.toy_digits import make_toy_digits

        counts = make_toy_digits(args.out_dir, args.size)
        print(
            f'wrote {counts["train"]} train and {counts["val"]} val digits of '
            f'{args.size}x{args.size} to {args.out_dir}'
        )


if __name__ == '__main__':
    main()
