"""Command-line plumbing shared by ``tools/train.py`` and ``tools/test.py``.

The tools serve configs of mmdet, mmseg, mmpose and mmpretrain alike: the toolbox is the
config's ``default_scope``. Flags and their meaning follow the toolboxes' own
scripts; ``--eval`` (mmdet 2.x habit) is mapped onto the test evaluator.
"""

import argparse
import importlib
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

TOOLBOXES = ('mmdet', 'mmseg', 'mmpose', 'mmpretrain')

# toolbox -> evaluator type -> (argument that selects metrics, allowed values).
# An argument of None means the evaluator always computes that metric.
EVAL_METRICS: Dict[str, Dict[str, Tuple[Optional[str], Tuple[str, ...]]]] = {
    'mmdet': {
        'CocoMetric': ('metric', ('bbox', 'segm', 'proposal', 'proposal_fast')),
        'LVISMetric': ('metric', ('bbox', 'segm', 'proposal', 'proposal_fast')),
        'VOCMetric': ('metric', ('mAP', 'recall')),
    },
    'mmseg': {
        'IoUMetric': ('iou_metrics', ('mIoU', 'mDice', 'mFscore')),
    },
    'mmpretrain': {
        'Accuracy': (None, ('accuracy',)),
    },
    'mmpose': {
        'CocoMetric': (None, ('mAP',)),
        'PCKAccuracy': (None, ('PCK',)),
    },
}
MASK_METRICS = ('segm',)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options key=value ...``: overrides merged into the config."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'model.backbone.init_cfg.checkpoint=PATH or key="[a,b]"',
    )


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags that train.py and test.py share (as the toolboxes' scripts)."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    add_cfg_options(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes --local-rank (torch>=2.0) or
    # --local_rank (older); torchrun only sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_args(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """Parse ``argv`` and export ``LOCAL_RANK`` as the stock scripts do."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config``; apply launcher, ``--cfg-options`` and work dir.

    The work dir is, in this priority: ``--work-dir``, ``work_dir`` of the
    config, ``./work_dirs/<config name>``.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config file {args.config!r} does not exist; pass the path of a '
            'config, e.g. configs/mask_rcnn_crossformer_s_fpn_1x_coco.py'
        )
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def toolbox_of(cfg: Config) -> str:
    """The toolbox a config belongs to: its ``default_scope``."""
    scope = cfg.get('default_scope', None)
    if scope not in TOOLBOXES:
        raise ValueError(
            f'config has default_scope={scope!r}; these tools run configs of '
            f'{", ".join(TOOLBOXES)}: inherit a config of one of them or set '
            "default_scope (e.g. default_scope = 'mmdet')"
        )
    return scope


def build_runner(cfg: Config) -> Runner:
    """The default Runner, or ``cfg.runner_type`` from the toolbox's RUNNERS."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    registry = importlib.import_module(f'{toolbox_of(cfg)}.registry')
    return registry.RUNNERS.build(cfg)


def _evaluator_type(evaluator: dict) -> str:
    return str(evaluator.get('type', '')).split('.')[-1]


def _has_key(node, key: str) -> bool:
    """Whether a nested dict/list config holds ``key`` with a non-None value."""
    if isinstance(node, dict):
        return any((k == key and v is not None) or _has_key(v, key) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return any(_has_key(v, key) for v in node)
    return False


def predicts_masks(cfg: Config) -> bool:
    """Whether the config's model has a mask head (instance segmentation)."""
    return _has_key(cfg.model, 'mask_head')


def apply_eval_metrics(
    cfg: Config, metrics: Iterable[str], eval_options: Optional[dict] = None
) -> List[str]:
    """Map ``--eval METRIC ...`` onto ``cfg.test_evaluator``.

    ``--eval bbox segm`` sets ``metric=['bbox', 'segm']`` of mmdet's
    CocoMetric, ``--eval mIoU`` sets ``iou_metrics`` of mmseg's IoUMetric,
    ``--eval mAP`` checks that mmpose's evaluator computes keypoint AP.
    ``eval_options`` are merged into every matching evaluator. Returns the
    evaluator types that were updated; raises ``ValueError`` on anything that
    cannot be mapped.
    """
    scope = toolbox_of(cfg)
    metrics = list(metrics)
    if 'test_evaluator' not in cfg or not cfg.test_evaluator:
        raise ValueError('--eval needs a test_evaluator in the config')
    if scope == 'mmdet' and set(metrics) & set(MASK_METRICS) and not predicts_masks(cfg):
        raise ValueError(
            f'--eval {" ".join(metrics)}: the model has no mask head, so '
            "there is no 'segm' to evaluate; use --eval bbox"
        )
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    known = EVAL_METRICS[scope]
    updated = []
    for evaluator in evaluators:
        name = _evaluator_type(evaluator)
        if name not in known:
            continue
        arg, allowed = known[name]
        unknown = [m for m in metrics if m not in allowed]
        if unknown:
            raise ValueError(
                f'--eval {" ".join(unknown)} is not a metric of {name}; '
                f'choose from {", ".join(allowed)}'
            )
        if arg is not None:
            evaluator[arg] = metrics
        if eval_options:
            evaluator.update(eval_options)
        updated.append(name)
    if not updated:
        types = [_evaluator_type(e) for e in evaluators]
        raise ValueError(
            f'--eval cannot be mapped onto the test evaluator(s) {types} of '
            f'this {scope} config (supported: {", ".join(known)}); set the '
            'metrics with --cfg-options test_evaluator.<arg>=... instead'
        )
    return updated
