"""Write a small COCO-format instance-segmentation toy set of coloured shapes.

Command line over :func:`crossformer_mm.testing.toy_coco.make_toy_coco` (see its module for the layout).
"""
import argparse

from crossformer_mm.testing.toy_coco import make_toy_coco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder to write the data set to')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_toy_coco(args.out_dir, args.num_train, args.num_val, args.size,
                  args.seed)


if __name__ == '__main__':
    main()
