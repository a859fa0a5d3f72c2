"""Run an exported ONNX file on an image in ONNX Runtime, with the PyTorch model's
own preprocessing and post-processing; ``--check`` runs PyTorch too and compares.

Post-processing (the PyTorch model's code on the ONNX outputs): classification:
the class of the largest logit; segmentation: logits resized to the input,
arg-max (the label map); single-stage detection: the head's ``predict_by_feat``
(box decoding, score threshold, NMS); two-stage detection: the chain of graphs written by
export_onnx.py (``X.onnx``, ``X.roi_head.onnx``, ``X.mask_head.onnx``, side by side) with
mmdet's proposals, box and mask post-processing between them (boxes, labels, masks);
HigherHRNet: keypoints
grouped by the head's decoder, one view (no flip test). Other models: the raw outputs.

Example::

    python tools/deployment/ort_infer.py CONFIG model.onnx demo.jpg --checkpoint CKPT --check
"""

import argparse

import mmcv
import numpy as np
import torch
from mmengine.config import DictAction

from crossformer_mm.deployment import (
    RoIStages,
    TensorOutputs,
    build_model,
    chain_errors,
    compare,
    is_two_stage,
    ort_session,
    postprocess,
    preprocess,
    run_ort,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('onnx')
    parser.add_argument('image')
    parser.add_argument('--checkpoint', help='the weights of the PyTorch model (for --check)')
    parser.add_argument(
        '--shape',
        nargs=2,
        type=int,
        metavar=('H', 'W'),
        help='resize the image to H x W first (a static export needs its size)',
    )
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--check',
        action='store_true',
        help='run PyTorch too: compare raw outputs and post-processed results',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, as given to export_onnx.py',
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    inputs, _ = preprocess(model, mmcv.imread(args.image), args.shape)
    if is_two_stage(model):
        run_chain(model, inputs, args)
        return
    outputs = [torch.from_numpy(o) for o in run_ort(ort_session(args.onnx, args.threads), inputs)]
    result = postprocess(model, outputs, inputs)
    print(f'ONNX Runtime: {result.summary}')
    if args.check:
        wrapped = TensorOutputs(model).eval()  # the exported function of export_onnx.py
        with torch.no_grad():
            references = list(wrapped(inputs))
        expected = postprocess(model, references, inputs)
        errors = compare(ort_session(args.onnx, args.threads), wrapped, inputs)['relative_error']
        print(f'PyTorch:      {expected.summary}')
        print(
            f'raw outputs: max relative error {max(errors):.2e}; post-processed results '
            f'{"equal" if result.equals(expected) else "DIFFER"}'
        )
        if not result.equals(expected):
            raise SystemExit(1)


def run_chain(model, inputs: torch.Tensor, args: argparse.Namespace) -> None:
    """A two-stage detector: its three graphs through ONNX Runtime, mmdet's post-processing
    between them; ``--check``: each graph and the detections against PyTorch's."""
    session = ort_session(args.onnx, args.threads)
    stages = RoIStages.onnx(model, args.onnx, args.threads)
    if not args.check:
        outputs = [torch.from_numpy(o) for o in run_ort(session, inputs)]
        print(f'ONNX Runtime: {postprocess(model, outputs, inputs, stages).summary}')
        return
    errors, result, expected = chain_errors(model, session, stages, inputs)
    print(f'ONNX Runtime: {result.summary}')
    print(f'PyTorch:      {expected.summary}')
    graphs = ', '.join(f'{key} {max(e):.2e}' for key, e in errors.items())
    equal = result.equals(expected)
    print(
        f'raw outputs: max relative error per graph: {graphs}; post-processed results '
        f'{"equal" if equal else "DIFFER"}'
    )
    if 'masks' in result.arrays and equal:
        print(f'mask pixels that differ: at most {result.mask_differences(expected).max()}')
    if not equal:
        raise SystemExit(1)


if __name__ == '__main__':
    np.set_printoptions(precision=3, suppress=True)
    main()
