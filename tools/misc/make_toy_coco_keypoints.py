"""Write a small COCO person-keypoints toy set of stick figures.

Command line over :func:`crossformer_mm.testing.toy_coco_keypoints.make_toy_coco_keypoints` (see its module for the layout).
"""
import argparse

from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder to write the data set to')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--size', type=int, default=256,
                        help='short image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_toy_coco_keypoints(args.out_dir, args.num_train, args.num_val,
                            args.size, args.seed)


if __name__ == '__main__':
    main()
