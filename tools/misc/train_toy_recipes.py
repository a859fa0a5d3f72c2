"""Learning checks of the Swin-recipe configs (DINO, Mask2Former, top-down heatmap) on toy data.

Each check loads a CrossFormer-S config of this repository (the stock Swin recipe with
CrossFormer in it), points it at a toy set (written into ``WORK_DIR`` when missing), shrinks
what a few CPU minutes cannot run (image sizes scaled to the toy images, top-down crops of
128x96 instead of 256x192, the toy CrossFormer
``TOY_BACKBONE_ARCH``, fewer queries, an iteration-based loop with a short warm-up and a constant
learning rate) and trains it from scratch with mmengine's stock :class:`~mmengine.runner.Runner`.
The recipe's model, losses, optimizer (with its layer-wise settings and gradient clipping),
data pipeline and evaluator stay. It reports the training loss of the first and the last
iterations and the validation metric, and exits with status 1 when the loss did not fall or
the metric is not above ``--min-metric``::

    OMP_NUM_THREADS=1 python tools/misc/train_toy_recipes.py dino --work-dir work_dirs/toy_dino
    OMP_NUM_THREADS=1 python tools/misc/train_toy_recipes.py mask2former-coco ...
    OMP_NUM_THREADS=1 python tools/misc/train_toy_recipes.py mask2former-ade ...
    OMP_NUM_THREADS=1 python tools/misc/train_toy_recipes.py topdown ...
"""

import argparse
import os.path as osp
import sys
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

from crossformer_mm.testing.toy_ade import make_toy_ade
from crossformer_mm.testing.toy_coco import CATEGORIES, make_toy_coco
from crossformer_mm.testing.toy_coco_keypoints import make_toy_coco_keypoints
from crossformer_mm.testing.toy_configs import TOY_BACKBONE_ARCH, seg_toy_overrides

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WIDTHS = [TOY_BACKBONE_ARCH['embed_dims'] * 2**i for i in range(4)]

#: recipe -> config, metric (message hub key after 'val/'), metric scale, defaults
RECIPES: Dict[str, Dict[str, Any]] = {
    'dino': dict(
        config='dino-5scale_crossformer-s_8xb2-12e_coco.py',
        metric='coco/bbox_mAP',
        label='toy COCO val box AP',
        scale=1.0,
        iters=300,
        lr=2e-4,
        min_metric=0.05,
    ),
    'mask2former-coco': dict(
        config='mask2former_crossformer-s_8xb2-lsj-50e_coco.py',
        metric='coco/segm_mAP',
        label='toy COCO val mask AP',
        scale=1.0,
        iters=300,
        lr=2e-4,
        min_metric=0.05,
    ),
    'mask2former-ade': dict(
        config='mask2former_crossformer-s_8xb2-160k_ade20k-512x512.py',
        metric='mIoU',
        label='toy ADE20K val mIoU',
        scale=0.01,
        iters=300,
        lr=2e-4,
        min_metric=0.2,
    ),
    'topdown': dict(
        config='td-hm_crossformer-s_8xb32-210e_coco-256x192.py',
        metric='coco/AP',
        label='toy COCO keypoints val AP',
        scale=1.0,
        iters=300,
        lr=5e-4,
        min_metric=0.05,
    ),
}
TOY_IMAGE = 64  # side of the toy COCO images; keypoints: 128; ADE: 64 x 96


def _walk(node: Any, visit) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, visit)


def _scale_det_pipeline(pipeline: list, factor: float) -> None:
    """Scale every resize / crop of an mmdet pipeline (COCO sizes) by ``factor`` in place."""

    def visit(node: dict) -> None:
        for key in ('scale', 'crop_size'):
            if isinstance(node.get(key), (tuple, list)):
                node[key] = tuple(max(8, round(s * factor)) for s in node[key])
        if isinstance(node.get('scales'), list):
            node['scales'] = [
                tuple(max(8, round(s * factor)) for s in scale) for scale in node['scales']
            ]

    _walk(pipeline, visit)


def _det_data(cfg: Config, root: str, factor: float) -> None:
    classes = tuple(CATEGORIES)
    for split, subset in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=osp.join(root, ''),
            ann_file=f'annotations/instances_{subset}.json',
            data_prefix=dict(img=f'{subset}/'),
            metainfo=dict(classes=classes),
        )
        _scale_det_pipeline(loader.dataset.pipeline, factor)
        if split != 'train':
            cfg[f'{split}_evaluator'].ann_file = osp.join(
                root, 'annotations', f'instances_{subset}.json'
            )

    def visit(node: dict) -> None:
        for key in ('num_classes', 'num_things_classes'):
            if isinstance(node.get(key), int):
                node[key] = len(classes)
        if node.get('num_stuff_classes'):
            node['num_stuff_classes'] = 0
        if isinstance(node.get('class_weight'), list):  # one weight per class + 'no object'
            node['class_weight'] = [1.0] * len(classes) + node['class_weight'][-1:]

    _walk(cfg.model, visit)


def toy_config(recipe: str, args: argparse.Namespace) -> Config:
    spec = RECIPES[recipe]
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', spec['config']))
    root = args.data_root or osp.join(args.work_dir, 'toy_data')
    model = cfg.model
    model.backbone.update(arch=TOY_BACKBONE_ARCH, drop_path_rate=0.0, init_cfg=None)
    if recipe == 'dino':
        if not osp.isfile(osp.join(root, 'annotations', 'instances_val.json')):
            make_toy_coco(root, args.num_train, args.num_val, TOY_IMAGE, args.seed)
        _det_data(cfg, root, TOY_IMAGE / 800)  # COCO's short side 800 -> the toy side
        model.neck.in_channels = WIDTHS
        model.num_queries = args.queries
        model.test_cfg.max_per_img = args.queries  # top-k over queries x classes
    elif recipe == 'mask2former-coco':
        if not osp.isfile(osp.join(root, 'annotations', 'instances_val.json')):
            make_toy_coco(root, args.num_train, args.num_val, TOY_IMAGE, args.seed)
        _det_data(cfg, root, TOY_IMAGE / 1024)  # LSJ's 1024 -> the toy side
        model.panoptic_head.in_channels = WIDTHS
        model.panoptic_head.num_queries = args.queries
        model.panoptic_fusion_head.num_things_classes = len(CATEGORIES)
        model.test_cfg.max_per_image = args.queries
        for augment in model.data_preprocessor.batch_augments:  # LSJ's pad to 1024x1024
            augment.size = (TOY_IMAGE, TOY_IMAGE)
    elif recipe == 'mask2former-ade':
        if not osp.isdir(osp.join(root, 'images', 'training')):
            make_toy_ade(root, args.num_train, args.num_val, 64, 96, args.seed)
        crop = (48, 48)
        cfg.merge_from_dict(seg_toy_overrides(cfg, root, 64, crop, args.batch_size))
        factor = 64 / 512
        for step in cfg.train_dataloader.dataset.pipeline:  # ADE's short sides -> the toy's
            if 'scales' in step:
                step['scales'] = [max(8, round(s * factor)) for s in step['scales']]
        model.decode_head.in_channels = WIDTHS
        model.decode_head.num_queries = args.queries
    elif recipe == 'topdown':
        if not osp.isfile(osp.join(root, 'annotations', 'person_keypoints_val.json')):
            make_toy_coco_keypoints(root, args.num_train, args.num_val, 128, args.seed)
        for split, subset in (('train', 'train'), ('val', 'val'), ('test', 'val')):
            loader = cfg[f'{split}_dataloader']
            loader.update(num_workers=0, persistent_workers=False)
            loader.dataset.update(
                data_root=osp.join(root, ''),
                ann_file=f'annotations/person_keypoints_{subset}.json',
                data_prefix=dict(img=f'{subset}/'),
                bbox_file=None,
            )
            if split != 'train':
                cfg[f'{split}_evaluator'].ann_file = osp.join(
                    root, 'annotations', f'person_keypoints_{subset}.json'
                )
        model.head.in_channels = WIDTHS[-1]

        def half_size(node: dict) -> None:  # 256x192 crops -> 128x96 (codec, pipelines, head)
            for key in ('input_size', 'heatmap_size'):
                if isinstance(node.get(key), (tuple, list)):
                    node[key] = tuple(s // 2 for s in node[key])

        _walk(cfg._cfg_dict, half_size)
    if recipe != 'mask2former-ade':
        cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters, val_interval=args.iters)
    cfg.val_cfg = dict(type='ValLoop')
    cfg.test_cfg = dict(type='TestLoop')
    cfg.param_scheduler = [
        dict(
            type='LinearLR',
            start_factor=1e-2,
            by_epoch=False,
            begin=0,
            end=max(1, args.iters // 10),
        )
    ]
    cfg.optim_wrapper.optimizer.lr = args.lr
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=args.log_interval)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=args.iters,
        save_optimizer=False,
        save_best=None,
    )
    cfg.default_hooks.pop('visualization', None)
    cfg.log_processor = dict(by_epoch=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = args.work_dir
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=args.batch_size)
    return cfg


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('recipe', choices=sorted(RECIPES))
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/toy_RECIPE')
    parser.add_argument('--data-root', default=None, help='default: WORK_DIR/toy_data')
    parser.add_argument('--num-train', type=int, default=60)
    parser.add_argument('--num-val', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--lr', type=float, default=None)
    parser.add_argument(
        '--queries',
        type=int,
        default=30,
        help='queries of DINO / Mask2Former (toy images hold 1-4 shapes)',
    )
    parser.add_argument('--log-interval', type=int, default=10)
    parser.add_argument('--min-metric', type=float, default=None)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    spec = RECIPES[args.recipe]
    args.work_dir = args.work_dir or f'work_dirs/toy_{args.recipe}'
    for key in ('iters', 'lr', 'min_metric'):
        if getattr(args, key) is None:
            setattr(args, key, spec[key])
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    spec = RECIPES[args.recipe]
    cfg = toy_config(args.recipe, args)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    minutes = (time.time() - start) / 60
    losses = np.asarray(runner.message_hub.get_scalar('train/loss').data[0])
    window = max(1, min(10, len(losses) // 4))
    first, last = float(losses[:window].mean()), float(losses[-window:].mean())
    value = runner.message_hub.get_scalar(f'val/{spec["metric"]}').current() * spec['scale']
    runner.logger.info(
        f'{args.recipe} ({spec["config"]}): train loss {first:.3f} (first {window} iterations) '
        f'-> {last:.3f} (last {window}); {spec["label"]} {value:.3f} after {args.iters} '
        f'iterations, {minutes:.1f} min wall time'
    )
    if not last < first:
        runner.logger.error('the training loss did not fall')
        sys.exit(1)
    if value <= args.min_metric:
        runner.logger.error(f'{value:.3f} is not above --min-metric {args.min_metric}')
        sys.exit(1)
    return value


if __name__ == '__main__':
    main()
