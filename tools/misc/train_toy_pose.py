"""Train a small HigherHRNet on a toy keypoint set on CPU; report AP.

A learning check of the pose stack: a published config
(``configs/higherhrnet_w32_coco_512x512.py``, or with ``--dataset crowdpose``
``configs/higherhrnet_w32_crowdpose_512x512.py``) is pointed at the toy data
of ``crossformer_mm.testing.toy_coco_keypoints`` /
``crossformer_mm.testing.toy_crowdpose`` (written first if ``--data-root``
holds none) at a small input size, its HRNet and head are shrunk, and
mmengine's stock :class:`~mmengine.runner.Runner` trains it from scratch with
the published train pipeline, loss and Adam schedule (shortened, with larger
pull/push factors so that the tags separate within minutes). mmpose's
``CocoMetric`` then scores the toy test split with flip test (CrowdPose: its
crowd evaluation, whose easy / medium / hard split is printed too); the
script draws the predicted skeletons of the first test images next to the
ground truth into ``WORK_DIR/toy_poses.png`` and exits with status 1 when the
keypoint AP is below ``--min-ap``.

Example::

    python tools/misc/train_toy_pose.py --work-dir work_dirs/toy_pose
    python tools/misc/train_toy_pose.py --dataset crowdpose --work-dir work_dirs/toy_crowdpose
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

from crossformer_mm.testing.learning_check import train_and_check
from crossformer_mm.testing.toy_configs import (
    POSE_TOY_LAYOUTS,
    pose_learning_config,
    pose_toy_metrics,
)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIGS = {
    'coco': osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_coco_512x512.py'),
    'crowdpose': osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_crowdpose_512x512.py'),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a small HigherHRNet on toy keypoints')
    parser.add_argument(
        '--dataset',
        choices=sorted(DEFAULT_CONFIGS),
        default='coco',
        help='toy set format (and default config)',
    )
    parser.add_argument(
        '--config', default=None, help='pose config of that dataset whose recipe is shrunk'
    )
    parser.add_argument('--work-dir', default='work_dirs/toy_pose')
    parser.add_argument(
        '--data-root',
        default=None,
        help='toy dataset (default: WORK_DIR/toy_coco_kpt or '
        'WORK_DIR/toy_crowdpose, written when missing)',
    )
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument(
        '--num-val',
        type=int,
        default=40,
        help='images of the split that is tested (COCO val, CrowdPose test)',
    )
    parser.add_argument('--image-size', type=int, default=128, help='short side of the toy images')
    parser.add_argument(
        '--input-size', type=int, default=128, help='network input size (multiple of 64)'
    )
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--epochs', type=int, default=80)
    parser.add_argument('--log-interval', type=int, default=25)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument(
        '--tag-loss-factor',
        type=float,
        default=1.0,
        help='pull and push factors (published: 1e-3 for 300 epochs; the '
        'short toy schedule needs the tags to separate sooner)',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--min-ap', type=float, default=0.5, help='fail (exit 1) below this keypoint AP'
    )
    parser.add_argument(
        '--num-pictures',
        type=int,
        default=4,
        help='test images drawn into WORK_DIR/toy_poses.png (0: none)',
    )
    args = parser.parse_args(argv)
    args.config = args.config or DEFAULT_CONFIGS[args.dataset]
    if args.data_root is None:
        folder = 'toy_coco_kpt' if args.dataset == 'coco' else 'toy_crowdpose'
        args.data_root = osp.join(args.work_dir, folder)
    return args


def write_toy_set(args: argparse.Namespace) -> None:
    """The toy set of ``args.dataset`` under ``args.data_root``, if missing."""
    layout = POSE_TOY_LAYOUTS[args.dataset]
    train_ann = osp.join(
        args.data_root, 'annotations', f'{layout["ann_prefix"]}{layout["splits"]["train"]}.json'
    )
    if osp.isfile(train_ann):
        return
    if args.dataset == 'coco':
        from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints

        make_toy_coco_keypoints(
            args.data_root, args.num_train, args.num_val, args.image_size, args.seed
        )
    else:
        from crossformer_mm.testing.toy_crowdpose import make_toy_crowdpose

        make_toy_crowdpose(args.data_root, args.num_train, args.num_val, args.image_size, args.seed)


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    write_toy_set(args)
    cfg = pose_learning_config(
        args.config,
        args.data_root,
        args.work_dir,
        args.input_size,
        args.batch_size,
        args.epochs,
        args.log_interval,
        args.lr,
        args.tag_loss_factor,
        args.seed,
        **POSE_TOY_LAYOUTS[args.dataset],
    )
    prefix = cfg.val_evaluator.get('prefix', 'coco')
    failure = None
    try:
        label = 'toy COCO-keypoints val AP' if args.dataset == 'coco' else 'toy CrowdPose test AP'
        value = train_and_check(
            cfg, f'{prefix}/AP', label, f'{args.epochs} epochs', args.min_ap, '--min-ap'
        )
    except SystemExit as exit_:  # below --min-ap: still report and draw
        failure = exit_
    print(pose_toy_metrics(prefix))
    if args.num_pictures > 0:
        from mmpose.apis import init_model

        from crossformer_mm.pose.visualization import draw_test_predictions

        picture = osp.join(args.work_dir, 'toy_poses.png')
        model = init_model(cfg, osp.join(args.work_dir, f'epoch_{args.epochs}.pth'), device='cpu')
        draw_test_predictions(model, picture, args.num_pictures)
        print(
            f'ground truth (left) and predicted skeletons (right) of '
            f'{args.num_pictures} test images -> {picture}'
        )
    if failure is not None:
        raise failure
    return value


if __name__ == '__main__':
    main()
