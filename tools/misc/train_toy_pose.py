"""Train a small HigherHRNet on the toy COCO-keypoints set on CPU; report AP.

A learning check of the pose stack: the published config
(``configs/higherhrnet_w32_coco_512x512.py`` by default) is pointed at the toy
data of ``tools/misc/make_toy_coco_keypoints.py`` (written first if
``--data-root`` holds none) at a small input size, its HRNet and head are
shrunk, and mmengine's stock :class:`~mmengine.runner.Runner` trains it from
scratch with the published train pipeline, loss and Adam schedule (shortened,
with larger pull/push factors so that the tags separate within minutes).
mmpose's ``CocoMetric`` then scores the toy validation split with flip test;
the script exits with status 1 when the keypoint AP is below ``--min-ap``.

Example::

    python tools/misc/train_toy_pose.py --work-dir work_dirs/toy_pose
"""
import argparse
import os.path as osp
from typing import Optional, Sequence

from crossformer_mm.testing.learning_check import train_and_check
from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints
from crossformer_mm.testing.toy_configs import pose_learning_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_coco_512x512.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a small HigherHRNet on toy COCO keypoints')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='COCO pose config whose recipe is shrunk')
    parser.add_argument('--work-dir', default='work_dirs/toy_pose')
    parser.add_argument('--data-root', default=None,
                        help='toy dataset (default: WORK_DIR/toy_coco_kpt, '
                        'written when missing)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--image-size', type=int, default=128,
                        help='short side of the toy images')
    parser.add_argument('--input-size', type=int, default=128,
                        help='network input size (multiple of 64)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--epochs', type=int, default=80)
    parser.add_argument('--log-interval', type=int, default=25)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument(
        '--tag-loss-factor',
        type=float,
        default=1.0,
        help='pull and push factors (published: 1e-3 for 300 epochs; the '
        'short toy schedule needs the tags to separate sooner)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-ap', type=float, default=0.5,
                        help='fail (exit 1) below this COCO keypoint AP')
    args = parser.parse_args(argv)
    if args.data_root is None:
        args.data_root = osp.join(args.work_dir, 'toy_coco_kpt')
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    if not osp.isfile(osp.join(args.data_root, 'annotations', 'person_keypoints_train.json')):
        make_toy_coco_keypoints(args.data_root, args.num_train, args.num_val, args.image_size,
                                args.seed)
    cfg = pose_learning_config(
        args.config, args.data_root, args.work_dir, args.input_size, args.batch_size,
        args.epochs, args.log_interval, args.lr, args.tag_loss_factor, args.seed)
    return train_and_check(cfg, 'coco/AP', 'toy COCO-keypoints val AP', f'{args.epochs} epochs',
                           args.min_ap, '--min-ap')


if __name__ == '__main__':
    main()
