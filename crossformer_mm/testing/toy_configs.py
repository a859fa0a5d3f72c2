"""Config overrides that run this project's published configs on the toy sets.

One place for every toy variant: the stock-tool tests pass them as
``--cfg-options`` (:func:`cli_options`), ``make demo`` and the learning checks
merge them into a loaded :class:`~mmengine.config.Config`.

- detection: :func:`det_data_options` (point a config at a toy COCO set),
  :func:`det_smoke_options` (plus a tiny model schedule for 2 iterations);
- segmentation: :func:`seg_toy_overrides`, :func:`seg_learning_config`;
- pose: :func:`pose_toy_overrides`, :func:`pose_learning_config`;
- classification: :func:`cls_learning_config`.
"""

import os.path as osp
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from mmengine.config import Config

from .toy_coco import CATEGORIES as TOY_CLASSES

#: Image side of the toy COCO sets that the stock-tool tests write.
TOY_SIZE = 64  # the image side of tests/_helpers.make_toy_set
#: A 4-stage CrossFormer with 32 channels and one or two blocks per stage.
TOY_BACKBONE_ARCH = dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
#: Width of the toy HRNet: branches of (32, 64, 128, 256) channels.
TOY_HRNET_WIDTH = 32
#: Short image side that the ADE20K configs resize to, (2048, 512).
ADE_SHORT_SIDE = 512


def cli_options(options: Dict[str, Any]) -> List[str]:
    """Format overrides as ``--cfg-options`` arguments of the stock tools."""

    def fmt(value: Any) -> str:
        if isinstance(value, (tuple, list)):
            return '(' + ','.join(fmt(v) for v in value) + ')'
        return str(value)

    return [f'{key}={fmt(value)}' for key, value in options.items()]


def config_paths(node: Any, prefix: str = '') -> Iterator[Tuple[str, Any, Any]]:
    """(dotted path, key, value) of every dict entry of a nested config."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f'{prefix}{key}'
        yield path, key, value
        yield from config_paths(value, path + '.')


# detection ------------------------------------------------------------------
def det_data_options(data_root: str, splits: Sequence[str] = ('train', 'val', 'test')) -> List[str]:
    """``--cfg-options`` that point a toy-COCO config (the demo) at ``data_root``."""
    data_root = osp.join(data_root, '')
    val_ann = f'{data_root}annotations/instances_val.json'
    options = [f'{split}_dataloader.dataset.data_root={data_root}' for split in splits]
    options += [f'{split}_evaluator.ann_file={val_ann}' for split in splits if split != 'train']
    return options


def _scale_options(pipeline, prefix: str, scale: int) -> List[str]:
    """Shrink every resize / crop of a pipeline to ``scale`` pixels."""
    options = []
    for path, key, _ in config_paths(pipeline, prefix):
        if key == 'scale':
            options.append(f'{path}=({scale},{scale})')
        elif key == 'scales':
            options.append(f'{path}=[({scale},{scale})]')
        elif key == 'crop_size':
            options.append(f'{path}=({scale // 2},{scale // 2})')
    return options


def det_smoke_options(
    cfg: Config, data_root: str, scale: int = TOY_SIZE, train_images: int = 4
) -> List[str]:
    """``--cfg-options`` that train/test any COCO detection ``cfg`` on a toy set quickly.

    Two iterations of batch 2 (``train_images`` = 4), validation off, no
    pretrained backbone, test on the val split with COCO metrics.
    """
    data_root = osp.join(data_root, '')
    classes = '[' + ','.join(TOY_CLASSES) + ']'
    options = [
        'model.backbone.init_cfg=None',
        'train_cfg.max_epochs=1',
        'val_cfg=None',
        'val_dataloader=None',
        'val_evaluator=None',
        'default_hooks.logger.interval=1',
        f'test_evaluator.ann_file={data_root}annotations/instances_val.json',
    ]
    for split, subset in (('train', 'train'), ('test', 'val')):
        loader = f'{split}_dataloader'
        options += [
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.ann_file=annotations/instances_{subset}.json',
            f'{loader}.dataset.data_prefix.img={subset}/',
            f'{loader}.dataset.metainfo.classes={classes}',
        ]
        options += _scale_options(
            cfg[loader].dataset.pipeline, f'{loader}.dataset.pipeline.', scale
        )
    options += ['train_dataloader.batch_size=2', f'train_dataloader.dataset.indices={train_images}']
    for path, key, _ in config_paths(cfg.model, 'model.'):
        if key == 'num_classes':
            options.append(f'{path}={len(TOY_CLASSES)}')
        elif key in ('nms_pre', 'max_per_img') and ('.rpn' in path or 'rpn_proposal' in path):
            options.append(f'{path}=32')
        elif key == 'num' and '.sampler.' in f'{path}' and 'rcnn' in path:
            options.append(f'{path}=8')
    return options


# segmentation ---------------------------------------------------------------
def _scale_pipeline(
    node: Any, key: str, factor: float, crop_size: Tuple[int, int], options: Dict[str, Any]
) -> None:
    """Record the overrides of every resize / crop below ``node``."""
    if isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            _scale_pipeline(child, f'{key}.{i}', factor, crop_size, options)
    elif isinstance(node, dict):
        if 'scale' in node:
            options[f'{key}.scale'] = tuple(max(1, round(s * factor)) for s in node['scale'])
        if 'crop_size' in node:
            options[f'{key}.crop_size'] = tuple(crop_size)
        if 'transforms' in node:
            _scale_pipeline(node['transforms'], f'{key}.transforms', factor, crop_size, options)


def seg_toy_overrides(
    cfg: Config,
    data_root: str,
    image_short_side: int,
    crop_size: Tuple[int, int],
    batch_size: int = 1,
) -> Dict[str, Any]:
    """Overrides that run an ADE20K config of this project on a toy ADE20K set.

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
        _scale_pipeline(
            cfg[loader].dataset.pipeline, f'{loader}.dataset.pipeline', factor, crop_size, options
        )
    _scale_pipeline(cfg.tta_pipeline, 'tta_pipeline', factor, crop_size, options)
    options['train_dataloader.batch_size'] = batch_size
    return options


def seg_learning_config(
    config: str,
    data_root: str,
    work_dir: str,
    image_short_side: int,
    crop_size: Tuple[int, int],
    batch_size: int,
    iters: int,
    val_interval: int,
    log_interval: int,
    lr: float,
    seed: int,
) -> Config:
    """The published ADE20K config on the toy data, with the toy CrossFormer and
    a short from-scratch poly schedule."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(
        seg_toy_overrides(cfg, data_root, image_short_side, tuple(crop_size), batch_size)
    )
    model = cfg.model
    model.backbone.update(arch=TOY_BACKBONE_ARCH, drop_path_rate=0.0, init_cfg=None)
    channels = [TOY_BACKBONE_ARCH['embed_dims'] * 2**i for i in range(4)]
    model.decode_head.update(in_channels=channels, channels=64)
    model.auxiliary_head.update(in_channels=channels[2], channels=32)
    cfg.optim_wrapper.optimizer.lr = lr
    warmup = max(1, iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup + 1),
        dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=iters + 1),
    ]
    cfg.train_cfg.update(max_iters=iters, val_interval=val_interval)
    cfg.default_hooks.logger.interval = log_interval
    cfg.default_hooks.checkpoint.update(interval=iters, save_optimizer=False)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


# classification -------------------------------------------------------------
def cls_learning_config(
    config: str,
    data_root: str,
    work_dir: str,
    image_size: int,
    arch: Dict[str, Any],
    batch_size: int,
    epochs: int,
    lr: float,
    log_interval: int,
    seed: int,
) -> Config:
    """A classification config of this project on an image folder
    (``DATA_ROOT/{train,val}/<class>/``, e.g. the toy digits) trained from
    scratch: the CrossFormer ``arch`` with a head for the folder's classes, the
    config's AdamW (no decay on 1-D parameters and biases, clip 5.0) and label
    smoothing at ``lr`` without batch scaling, 1 warm-up epoch then cosine;
    the published augmentations give way to a random resized crop of
    ``image_size`` (scale 0.6-1, no flip: digits are not mirror-symmetric),
    without Mixup / CutMix. Data loading runs in the main process."""
    import os

    cfg = Config.fromfile(config)
    classes = sorted(
        d
        for d in os.listdir(osp.join(data_root, 'train'))
        if osp.isdir(osp.join(data_root, 'train', d))
    )
    model = cfg.model
    model.backbone.update(arch=arch, drop_path_rate=0.0, init_cfg=None)
    model.head.update(num_classes=len(classes), in_channels=arch['embed_dims'] * 8)
    model.train_cfg = None  # no batch augments
    cfg.data_preprocessor.num_classes = len(classes)  # the Runner gives it to the model
    pipelines = dict(
        train=[
            dict(type='LoadImageFromFile'),
            dict(
                type='RandomResizedCrop',
                scale=image_size,
                crop_ratio_range=(0.6, 1.0),
                backend='pillow',
                interpolation='bicubic',
            ),
            dict(type='PackInputs'),
        ],
        val=[
            dict(type='LoadImageFromFile'),
            dict(
                type='ResizeEdge',
                scale=image_size,
                edge='short',
                backend='pillow',
                interpolation='bicubic',
            ),
            dict(type='CenterCrop', crop_size=image_size),
            dict(type='PackInputs'),
        ],
    )
    for split in ('train', 'val', 'test'):
        folder = 'train' if split == 'train' else 'val'
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
        loader.dataset = dict(
            type='CustomDataset',
            data_root=data_root,
            data_prefix=folder,
            pipeline=pipelines['train' if split == 'train' else 'val'],
        )
    cfg.val_evaluator = dict(type='Accuracy', topk=(1,))
    cfg.test_evaluator = cfg.val_evaluator
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.auto_scale_lr = dict(base_batch_size=batch_size, enable=False)
    cfg.param_scheduler = [
        dict(
            type='LinearLR',
            start_factor=1e-2,
            by_epoch=True,
            begin=0,
            end=1,
            convert_to_iter_based=True,
        )
    ] + (
        [
            dict(
                type='CosineAnnealingLR',
                eta_min_ratio=1e-2,
                by_epoch=True,
                begin=1,
                end=epochs,
                convert_to_iter_based=True,
            )
        ]
        if epochs > 1
        else []
    )
    cfg.train_cfg.update(max_epochs=epochs, val_interval=epochs)
    cfg.default_hooks.logger.interval = log_interval
    cfg.default_hooks.checkpoint.update(interval=epochs, save_optimizer=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


# pose -----------------------------------------------------------------------
def shrink_hrnet(extra: dict, width: int = TOY_HRNET_WIDTH) -> None:
    """Make the HRNet ``extra`` of a config the toy HRNet (in place): one
    module of one block per branch and stage, ``width * 2**b`` channels."""
    for stage in extra.values():
        branches = stage['num_branches']
        stage.update(
            num_modules=1,
            num_blocks=(1,) * branches,
            num_channels=tuple(width * 2**b for b in range(branches)),
        )


#: The toy layouts of the pose datasets: annotation file prefix, the toy
#: split of each loader, the image folder (None: one folder per split).
POSE_TOY_LAYOUTS = {
    'coco': dict(
        ann_prefix='person_keypoints_',
        splits={'train': 'train', 'val': 'val', 'test': 'val'},
        image_prefix=None,
    ),
    'crowdpose': dict(
        ann_prefix='mmpose_crowdpose_',
        splits={'train': 'trainval', 'val': 'test', 'test': 'test'},
        image_prefix='images/',
    ),
}


def pose_toy_overrides(
    cfg: Config,
    data_root: str,
    input_size: int,
    batch_size: int = 2,
    ann_prefix: str = 'person_keypoints_',
    splits: Dict[str, str] = None,
    image_prefix: str = None,
) -> Dict[str, Any]:
    """Overrides that run a bottom-up pose config of this project on a toy set.

    ``splits`` maps the config's loaders (train / val / test) to the toy set's
    split names (annotation files ``annotations/{ann_prefix}{split}.json``,
    images ``{split}/``, or ``image_prefix`` for every split, as CrowdPose's
    ``images/``); :data:`POSE_TOY_LAYOUTS` holds the settings of the toy COCO and
    CrowdPose sets. Every ``input_size`` of the pipelines becomes
    ``input_size`` (an int stays an int, a (w, h) pair becomes square); data
    loading runs in the main process.
    """
    splits = splits or {'train': 'train', 'val': 'val', 'test': 'val'}
    options: Dict[str, Any] = {}
    for split, toy_split in splits.items():
        loader = f'{split}_dataloader'
        options.update(
            {
                f'{loader}.dataset.data_root': data_root,
                f'{loader}.dataset.ann_file': f'annotations/{ann_prefix}{toy_split}.json',
                f'{loader}.dataset.data_prefix.img': image_prefix or f'{toy_split}/',
                f'{loader}.num_workers': 0,
                f'{loader}.persistent_workers': False,
            }
        )
        for i, step in enumerate(cfg[loader].dataset.pipeline):
            if 'input_size' in step:
                options[f'{loader}.dataset.pipeline.{i}.input_size'] = (
                    input_size if isinstance(step['input_size'], int) else (input_size, input_size)
                )
        evaluator = f'{split}_evaluator'
        if split != 'train' and evaluator in cfg:
            options[f'{evaluator}.ann_file'] = osp.join(
                data_root, 'annotations', f'{ann_prefix}{toy_split}.json'
            )
    options['train_dataloader.batch_size'] = batch_size
    return options


def pose_learning_config(
    config: str,
    data_root: str,
    work_dir: str,
    input_size: int,
    batch_size: int,
    epochs: int,
    log_interval: int,
    lr: float,
    tag_loss_factor: float,
    seed: int,
    **overrides_kwargs,
) -> Config:
    """A bottom-up HigherHRNet config on a toy set, with the toy HRNet and a
    short from-scratch schedule (``overrides_kwargs`` go to :func:`pose_toy_overrides`)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(
        pose_toy_overrides(cfg, data_root, input_size, batch_size, **overrides_kwargs)
    )
    shrink_hrnet(cfg.model.backbone.extra)
    cfg.model.backbone.init_cfg = None
    cfg.model.head.update(
        in_channels=TOY_HRNET_WIDTH, deconv_out_channels=(TOY_HRNET_WIDTH,), num_basic_blocks=1
    )
    cfg.model.head.tag_loss.update(
        pull_loss_factor=tag_loss_factor, push_loss_factor=tag_loss_factor
    )
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.param_scheduler = [
        dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
        dict(
            type='MultiStepLR',
            begin=0,
            end=epochs,
            milestones=[int(epochs * 0.75), int(epochs * 0.9)],
            gamma=0.1,
            by_epoch=True,
        ),
    ]
    cfg.train_cfg.update(max_epochs=epochs, val_interval=epochs)
    cfg.default_hooks.logger.interval = log_interval
    cfg.default_hooks.checkpoint.update(interval=epochs, save_optimizer=False, save_best=None)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


#: The keypoint metrics reported by the toy learning checks, per CocoMetric prefix.
POSE_TOY_METRICS = {
    'coco': ('AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)'),
    'crowdpose': ('AP', 'AP .5', 'AP .75', 'AP(E)', 'AP(M)', 'AP(H)'),
}


def pose_toy_metrics(prefix: str) -> str:
    """One line with the last validation's keypoint metrics of the current
    runner (``prefix`` = the CocoMetric prefix: 'coco', or 'crowdpose' with the
    easy / medium / hard split by crowd index)."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_current_instance()
    values = []
    for name in POSE_TOY_METRICS.get(prefix, ('AP',)):
        key = f'val/{prefix}/{name}'
        if key in hub.log_scalars:
            values.append(f'{name} {hub.get_scalar(key).current():.3f}')
    return f'{prefix} keypoint metrics: ' + (', '.join(values) or 'none logged')
