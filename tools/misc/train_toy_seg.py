"""Train a small CrossFormer UPerNet on toy ADE20K data on CPU; report mIoU.

A learning check of the segmentation stack: the published UPerNet config
(``configs/upernet_crossformer_s_512x512_160k_ade20k.py`` by default) is
pointed at the toy data of ``tools/misc/make_toy_ade.py`` (written first if
``--data-root`` holds none), its backbone and heads are shrunk, and mmengine's
stock :class:`~mmengine.runner.Runner` trains it from scratch. mmseg's
``IoUMetric`` scores the toy validation split; the script exits with status 1
when the final mIoU is below ``--min-miou``.

Example (about 2.5 minutes on 2 shared CPU cores, where one thread per process
is the fastest setting)::

    OMP_NUM_THREADS=1 python tools/misc/train_toy_seg.py \
        --work-dir work_dirs/toy_seg
"""
import argparse
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence, Tuple

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_toy_ade import make_toy_ade  # noqa: E402
from toy_common import train_and_check  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs',
                          'upernet_crossformer_s_512x512_160k_ade20k.py')
#: Short image side that the ADE20K configs resize to, (2048, 512).
ADE_SHORT_SIDE = 512
#: A 4-stage CrossFormer with 32 channels and one or two blocks per stage.
TOY_BACKBONE_ARCH = dict(
    embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))


def toy_overrides(cfg: Config,
                  data_root: str,
                  image_short_side: int,
                  crop_size: Tuple[int, int],
                  batch_size: int = 1) -> Dict[str, Any]:
    """Config overrides (``--cfg-options`` keys) that run an ADE20K config of
    this project on a toy set written by ``make_toy_ade.py``.

    Every ``scale`` of the train, test and TTA pipelines is multiplied by
    ``image_short_side / 512``, so the toy images go through the same
    relative resizing as ADE20K images through the published pipelines;
    crops (and the training batch padding) become ``crop_size`` (H, W).
    Data loading runs in the main process.
    """
    factor = image_short_side / ADE_SHORT_SIDE
    options: Dict[str, Any] = {'model.data_preprocessor.size': crop_size}
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        options[f'{loader}.dataset.data_root'] = data_root
        options[f'{loader}.num_workers'] = 0
        options[f'{loader}.persistent_workers'] = False
        _scale_pipeline(cfg[loader].dataset.pipeline,
                        f'{loader}.dataset.pipeline', factor, crop_size,
                        options)
    _scale_pipeline(cfg.tta_pipeline, 'tta_pipeline', factor, crop_size,
                    options)
    options['train_dataloader.batch_size'] = batch_size
    return options


def _scale_pipeline(node: Any, key: str, factor: float,
                    crop_size: Tuple[int, int], options: Dict[str,
                                                              Any]) -> None:
    """Record the overrides of every resize / crop below ``node``."""
    if isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            _scale_pipeline(child, f'{key}.{i}', factor, crop_size, options)
    elif isinstance(node, dict):
        if 'scale' in node:
            options[f'{key}.scale'] = tuple(
                max(1, round(s * factor)) for s in node['scale'])
        if 'crop_size' in node:
            options[f'{key}.crop_size'] = tuple(crop_size)
        if 'transforms' in node:
            _scale_pipeline(node['transforms'], f'{key}.transforms', factor,
                            crop_size, options)


def build_toy_config(args: argparse.Namespace) -> Config:
    """The published config, on the toy data, with a small model and a short
    from-scratch schedule."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(
        toy_overrides(cfg, args.data_root, min(args.image_size),
                      tuple(args.crop_size), args.batch_size))
    model = cfg.model
    model.backbone.update(arch=TOY_BACKBONE_ARCH, drop_path_rate=0.,
                          init_cfg=None)
    channels = [TOY_BACKBONE_ARCH['embed_dims'] * 2**i for i in range(4)]
    model.decode_head.update(in_channels=channels, channels=64)
    model.auxiliary_head.update(in_channels=channels[2], channels=32)

    cfg.optim_wrapper.optimizer.lr = args.lr
    warmup = max(1, args.iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
             end=warmup + 1),
        dict(type='PolyLR', power=1.0, eta_min=0., by_epoch=False,
             begin=0, end=args.iters + 1),
    ]
    cfg.train_cfg.update(max_iters=args.iters, val_interval=args.val_interval)
    cfg.default_hooks.logger.interval = args.log_interval
    cfg.default_hooks.checkpoint.update(interval=args.iters,
                                        save_optimizer=False)
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = args.work_dir
    return cfg


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a small CrossFormer UPerNet on toy ADE20K data')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='ADE20K config whose recipe is shrunk')
    parser.add_argument('--work-dir', default='work_dirs/toy_seg')
    parser.add_argument('--data-root', default=None,
                        help='toy dataset (default: WORK_DIR/toy_ade, '
                        'written when missing)')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument('--image-size', type=int, nargs=2, default=(96, 128),
                        metavar=('H', 'W'), help='toy image size')
    parser.add_argument('--crop-size', type=int, nargs=2, default=(64, 64),
                        metavar=('H', 'W'), help='training crop size')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--val-interval', type=int, default=100)
    parser.add_argument('--log-interval', type=int, default=50)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-miou', type=float, default=0.6,
                        help='fail (exit 1) below this mIoU (fraction)')
    args = parser.parse_args(argv)
    if args.data_root is None:
        args.data_root = osp.join(args.work_dir, 'toy_ade')
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    if not osp.isdir(osp.join(args.data_root, 'images', 'training')):
        height, width = args.image_size
        make_toy_ade(args.data_root, args.num_train, args.num_val, height,
                     width, args.seed)
    # IoUMetric reports percentages
    return train_and_check(
        build_toy_config(args), 'mIoU', 'toy ADE20K val mIoU',
        f'{args.iters} iterations', args.min_miou, '--min-miou', scale=0.01)


if __name__ == '__main__':
    main()
