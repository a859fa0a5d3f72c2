"""Run an exported ONNX file on an image in ONNX Runtime, with the PyTorch model's
own preprocessing and post-processing; ``--check`` runs PyTorch too and compares.

Post-processing (the PyTorch model's code on the ONNX outputs): classification:
the class of the largest logit; segmentation: logits resized to the input,
arg-max (the label map); single-stage detection: the head's ``predict_by_feat``
(box decoding, score threshold, NMS); two-stage detection: the RPN's proposals (its
``predict_by_feat``; the RoI head is not in the exported graph); HigherHRNet: keypoints
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
    TensorOutputs,
    build_model,
    compare,
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


if __name__ == '__main__':
    np.set_printoptions(precision=3, suppress=True)
    main()
