"""Export a model of this repository to ONNX: the network up to its raw outputs.

Detection: the head outputs before box decoding and NMS (per level: class
scores, box deltas, ...); a two-stage detector (Mask R-CNN, Cascade Mask R-CNN):
a chain of three graphs, ``OUT`` (the RPN's outputs and the neck's maps),
``OUT-stem.roi_head.onnx`` (maps + RoIs -> the box head's scores and deltas, a
cascade's stages with their refinement) and ``OUT-stem.mask_head.onnx`` (maps +
final boxes -> mask logits), with mmdet's proposal / box / mask post-processing
between them (``crossformer_mm.deployment.two_stage``);
segmentation: the decoder's logits; pose (HigherHRNet): heatmaps and tags;
classification: logits. The input is the normalised image batch: the model's
``data_preprocessor`` (BGR -> RGB as configured, ``(x - mean) / std``, padding
to its size divisor) is not in the graph; ``tools/deployment/ort_infer.py``
applies it. See docs/deployment.md.

Example::

    python tools/deployment/export_onnx.py configs/retinanet_crossformer_s_fpn_1x_coco.py \\
        retinanet.pth --shape 800 1216 --dynamic --out retinanet.onnx --check
"""

import argparse

import torch
from mmengine.config import DictAction

from crossformer_mm.deployment import (
    RoIStages,
    TensorOutputs,
    build_model,
    chain_errors,
    compare,
    export_onnx,
    export_two_stage,
    find_backbone,
    is_two_stage,
    min_dynamic_size,
    non_standard_ops,
    ort_session,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="a checkpoint file, or 'none' (random weights)")
    parser.add_argument(
        '--shape',
        nargs=2,
        type=int,
        default=[800, 1216],
        metavar=('H', 'W'),
        help='input height and width to export at',
    )
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='dynamic batch / height / width (from the small-map limit up)',
    )
    parser.add_argument('--exporter', default='dynamo', choices=['dynamo', 'torchscript'])
    parser.add_argument('--out', default='model.onnx')
    parser.add_argument(
        '--check',
        action='store_true',
        help='run the file in ONNX Runtime against PyTorch at the export size '
        '(and 64 / 96 pixels larger with --dynamic)',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = build_model(args.config, checkpoint, args.cfg_options)
    backbone = find_backbone(model)
    min_size = min_dynamic_size(backbone) if backbone is not None else 32
    wrapped = TensorOutputs(model).eval()
    inputs = torch.randn(1, 3, *args.shape)
    if is_two_stage(model):
        export_chain(model, inputs, args, min_size)
        return
    names = export_onnx(
        wrapped, inputs, args.out, dynamic=args.dynamic, exporter=args.exporter, min_size=min_size
    )
    extra = non_standard_ops(args.out)
    print(
        f'exported {args.out}: {len(names)} outputs, dynamic={args.dynamic}'
        + (f' (height / width >= {min_size})' if args.dynamic else '')
        + (f'; non-standard operators: {extra}' if extra else '; standard operators only')
    )
    if args.check:
        session = ort_session(args.out)
        height, width = args.shape
        # a dynamic graph is checked at a second size too: sizes baked in show there
        sizes = [(height, width)] + ([(height + 64, width + 96)] if args.dynamic else [])
        for h, w in sizes:
            errors = compare(session, wrapped, torch.randn(1, 3, h, w))['relative_error']
            print(
                f'ONNX Runtime vs PyTorch at {h}x{w}: max relative error '
                f'{max(errors):.2e} over {len(errors)} outputs'
            )


def export_chain(model, inputs: torch.Tensor, args: argparse.Namespace, min_size: int) -> None:
    """A two-stage detector: its three graphs, checked graph by graph and end to end."""
    written = export_two_stage(
        model, inputs, args.out, dynamic=args.dynamic, exporter=args.exporter, min_size=min_size
    )
    for key, path in written.items():
        extra = non_standard_ops(path)
        print(
            f'exported {path} ({key}), dynamic={args.dynamic}'
            + (f'; non-standard operators: {extra}' if extra else '; standard operators only')
        )
    if args.check:
        session, stages = ort_session(args.out), RoIStages.onnx(model, args.out)
        height, width = args.shape
        sizes = [(height, width)] + ([(height + 64, width + 96)] if args.dynamic else [])
        for h, w in sizes:
            errors, result, expected = chain_errors(model, session, stages, torch.randn(1, 3, h, w))
            graphs = ', '.join(f'{key} {max(e):.2e}' for key, e in errors.items())
            print(f'ONNX Runtime vs PyTorch at {h}x{w}: max relative error per graph: {graphs}')
            print(
                f'  detections {"equal" if result.equals(expected) else "DIFFER"}: {result.summary}'
            )


if __name__ == '__main__':
    main()
