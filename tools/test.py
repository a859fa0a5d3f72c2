"""Test (and evaluate) a checkpoint with a config of mmdet, mmseg or mmpose.

    python tools/test.py CONFIG CHECKPOINT [--eval bbox segm] [--out FILE]
        [--show-dir DIR] [--tta] [--onnx FILE] [--work-dir DIR] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

``--eval`` (the flag of mmdet 2.x and of the original CrossFormer repo) maps
onto the test evaluator: ``bbox``/``segm``/``proposal`` for mmdet's
CocoMetric, ``mIoU``/``mDice``/``mFscore`` for mmseg's IoUMetric, ``mAP`` for
mmpose's CocoMetric. Metrics are also written to the work dir as json.
``--onnx FILE`` runs the network in ONNX Runtime (the metric of an exported
model; see docs/deployment.md).
"""

import argparse
from copy import deepcopy

from mmengine.config import ConfigDict, DictAction

from crossformer_mm.utils.cli import (
    add_common_args,
    apply_eval_metrics,
    build_runner,
    load_config,
    parse_args,
    predicts_masks,
    toolbox_of,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector / segmentor / pose model'
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--eval',
        nargs='+',
        metavar='METRIC',
        help='metrics to evaluate, e.g. "bbox segm" (mmdet), "mIoU" (mmseg), "mAP" (mmpose)',
    )
    parser.add_argument(
        '--eval-options',
        nargs='+',
        action=DictAction,
        help='extra evaluator arguments, e.g. classwise=True',
    )
    parser.add_argument(
        '--out',
        help='mmdet/mmpose: dump predictions to this .pkl file; mmseg: save '
        'predicted masks into this directory',
    )
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save images painted with predictions here')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument(
        '--onnx',
        metavar='FILE',
        help='run the network in ONNX Runtime from this file (tools/deployment/export_onnx.py, '
        "or mmdeploy's end2end.onnx of a model without post-processing in the graph); "
        "everything around it stays the PyTorch model's",
    )
    add_common_args(parser)
    return parser


def enable_visualization(cfg, args: argparse.Namespace, scope: str) -> None:
    """Turn on the toolbox's visualization hook for --show / --show-dir."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError('--show/--show-dir need default_hooks.visualization in the config')
    hook = hooks.visualization
    if scope == 'mmdet':
        from mmdet.engine.hooks.utils import trigger_visualization_hook

        trigger_visualization_hook(cfg, args)
        return
    if scope == 'mmseg':
        hook.draw = True
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
    else:  # mmpose
        hook.enable = True
        hook.out_dir = args.show_dir
    hook.show = args.show
    hook.wait_time = args.wait_time


def enable_tta(cfg, scope: str) -> None:
    """Wrap the model in the config's TTA model (mmdet: flip TTA default)."""
    if scope == 'mmdet':
        if predicts_masks(cfg):
            raise ValueError(
                "--tta: mmdet's DetTTAModel merges boxes only, so it cannot "
                'test a model with a mask head; drop --tta'
            )
        cfg.setdefault(
            'tta_model',
            dict(
                type='DetTTAModel',
                tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
            ),
        )
        if 'tta_pipeline' not in cfg:
            dataset = cfg.test_dataloader.dataset
            while 'dataset' in dataset:
                dataset = dataset['dataset']
            pipeline = deepcopy(dataset.pipeline)
            pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[
                    [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
                    [
                        dict(
                            type='PackDetInputs',
                            meta_keys=(
                                'img_id',
                                'img_path',
                                'ori_shape',
                                'img_shape',
                                'scale_factor',
                                'flip',
                                'flip_direction',
                            ),
                        )
                    ],
                ],
            )
            cfg.tta_pipeline = pipeline
    elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise RuntimeError(f'--tta needs tta_model and tta_pipeline in this {scope} config')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def add_prediction_dump(cfg, out: str, scope: str) -> None:
    """Make the test loop also save the raw predictions (``--out``)."""
    if scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: the dump file must be a .pkl file')
    dump = dict(
        type='mmdet.DumpDetResults' if scope == 'mmdet' else 'DumpResults', out_file_path=out
    )
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    cfg.test_evaluator = [*evaluators, dump]


def main() -> None:
    args = parse_args(build_parser())
    cfg = load_config(args)
    scope = toolbox_of(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo

        setup_cache_size_limit_of_dynamo()
    cfg.load_from = args.checkpoint
    if args.eval:
        apply_eval_metrics(cfg, args.eval, args.eval_options)
    elif args.eval_options:
        raise ValueError('--eval-options needs --eval METRIC ...')
    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.tta:
        enable_tta(cfg, scope)
    if args.out is not None:
        add_prediction_dump(cfg, args.out, scope)
    runner = build_runner(cfg)
    if args.onnx:
        from crossformer_mm.deployment import ort_session, run_network_in_onnx_runtime

        run_network_in_onnx_runtime(
            getattr(runner.model, 'module', runner.model), ort_session(args.onnx)
        )
    runner.test()


if __name__ == '__main__':
    main()
