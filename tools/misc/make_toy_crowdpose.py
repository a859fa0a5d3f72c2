"""Write a small CrowdPose-format toy set of stick figures (14 joints, crowdIndex).

Command line over :func:`crossformer_mm.testing.toy_crowdpose.make_toy_crowdpose` (see its module for the layout).
"""
import argparse

from crossformer_mm.testing.toy_crowdpose import make_toy_crowdpose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder to write the data set to')
    parser.add_argument('--num-train', type=int, default=200,
                        help='train + val images (val: a fifth), also written as trainval')
    parser.add_argument('--num-test', type=int, default=40)
    parser.add_argument('--size', type=int, default=256, help='short image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_toy_crowdpose(args.out_dir, args.num_train, args.num_test, args.size, args.seed)


if __name__ == '__main__':
    main()
