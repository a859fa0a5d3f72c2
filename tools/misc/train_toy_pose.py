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
import sys
from typing import Any, Dict, Optional, Sequence

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_toy_coco_keypoints import make_toy_coco_keypoints  # noqa: E402
from toy_common import train_and_check  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs',
                          'higherhrnet_w32_coco_512x512.py')
#: Width of the toy HRNet: branches of (32, 64, 128, 256) channels, one module
#: of one block per branch and stage.
TOY_WIDTH = 32


def shrink_hrnet(extra: dict) -> None:
    """Make the HRNet ``extra`` of a config the toy HRNet (in place)."""
    for stage in extra.values():
        branches = stage['num_branches']
        stage.update(
            num_modules=1,
            num_blocks=(1, ) * branches,
            num_channels=tuple(TOY_WIDTH * 2**b for b in range(branches)))


def toy_overrides(cfg: Config, data_root: str, input_size: int,
                  batch_size: int = 2) -> Dict[str, Any]:
    """Config overrides (``--cfg-options`` keys) that run a pose config of
    this project on a toy set written by ``make_toy_coco_keypoints.py``.

    Every ``input_size`` in the train / val / test pipelines becomes
    ``input_size`` (an int stays an int, a (w, h) pair becomes square); data
    loading runs in the main process.
    """
    options: Dict[str, Any] = {}
    for split, toy_split in (('train', 'train'), ('val', 'val'),
                             ('test', 'val')):
        loader = f'{split}_dataloader'
        options.update({
            f'{loader}.dataset.data_root': data_root,
            f'{loader}.dataset.ann_file':
            f'annotations/person_keypoints_{toy_split}.json',
            f'{loader}.dataset.data_prefix.img': f'{toy_split}/',
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
        })
        for i, step in enumerate(cfg[loader].dataset.pipeline):
            if 'input_size' in step:
                options[f'{loader}.dataset.pipeline.{i}.input_size'] = (
                    input_size if isinstance(step['input_size'], int) else
                    (input_size, input_size))
    for evaluator in ('val_evaluator', 'test_evaluator'):
        options[f'{evaluator}.ann_file'] = osp.join(
            data_root, 'annotations', 'person_keypoints_val.json')
    options['train_dataloader.batch_size'] = batch_size
    return options


def build_toy_config(args: argparse.Namespace) -> Config:
    """The published config, on the toy data, with a small model and a short
    from-scratch schedule."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(
        toy_overrides(cfg, args.data_root, args.input_size, args.batch_size))
    shrink_hrnet(cfg.model.backbone.extra)
    cfg.model.backbone.init_cfg = None
    cfg.model.head.update(
        in_channels=TOY_WIDTH,
        deconv_out_channels=(TOY_WIDTH, ),
        num_basic_blocks=1)
    cfg.model.head.tag_loss.update(
        pull_loss_factor=args.tag_loss_factor,
        push_loss_factor=args.tag_loss_factor)

    cfg.optim_wrapper.optimizer.lr = args.lr
    cfg.param_scheduler = [
        dict(type='LinearLR', begin=0, end=50, start_factor=0.01,
             by_epoch=False),
        dict(
            type='MultiStepLR',
            begin=0,
            end=args.epochs,
            milestones=[int(args.epochs * 0.75),
                        int(args.epochs * 0.9)],
            gamma=0.1,
            by_epoch=True)
    ]
    cfg.train_cfg.update(max_epochs=args.epochs, val_interval=args.epochs)
    cfg.default_hooks.logger.interval = args.log_interval
    cfg.default_hooks.checkpoint.update(
        interval=args.epochs, save_optimizer=False, save_best=None)
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = args.work_dir
    return cfg


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
    if not osp.isfile(
            osp.join(args.data_root, 'annotations',
                     'person_keypoints_train.json')):
        make_toy_coco_keypoints(args.data_root, args.num_train, args.num_val,
                                args.image_size, args.seed)
    return train_and_check(build_toy_config(args), 'coco/AP',
                           'toy COCO-keypoints val AP',
                           f'{args.epochs} epochs', args.min_ap, '--min-ap')


if __name__ == '__main__':
    main()
