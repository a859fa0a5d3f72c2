"""The network of an OpenMMLab model run by ONNX Runtime inside the model's own
test-time code: the stock test loop, metrics and visualisation on an exported file.

The exported graph (:class:`~.onnx_export.TensorOutputs`, or mmdeploy's
``end2end.onnx`` of a model without post-processing in the graph, e.g.
HigherHRNet) maps the normalised image batch to the raw outputs of the model's
last head. :func:`run_network_in_onnx_runtime` makes the model's
``extract_feat`` hand the image batch through and that head's ``forward``
run the graph, so everything around it stays the PyTorch model's: the data
preprocessor, flip / multi-scale test, sliding windows, decoding, NMS,
grouping, rescaling to the original image. ``tools/test.py --onnx FILE``
uses it.
"""

import inspect
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .onnx_export import is_two_stage, run_ort

#: The attribute of the last head, whose ``forward`` ends the exported network:
#: single-stage detectors, segmentors, classifiers and pose estimators.
HEADS = ('bbox_head', 'decode_head', 'head')

Structure = Union[Tensor, List[Tensor], Tuple[List[Tensor], ...]]


def network_head(model: nn.Module) -> nn.Module:
    """The head of ``model`` whose ``forward`` returns the exported raw outputs.

    Raises:
        ValueError: a model whose raw outputs are not one head's (two-stage
            detectors: RPN, RoI and mask heads; query-based detectors).
    """
    name = type(model).__name__
    if is_two_stage(model):
        raise ValueError(
            f'{name} is a two-stage detector: its network is not one graph ending at a head, '
            'so it cannot run in ONNX Runtime through tools/test.py --onnx; evaluate it in '
            'PyTorch (tools/test.py without --onnx)'
        )
    for attr in HEADS:
        head = getattr(model, attr, None)
        if isinstance(head, nn.Module):
            if len(required_arguments(head.forward)) != 1:
                raise ValueError(
                    f"{name}'s {attr} takes more than features ({type(head).__name__}: e.g. "
                    'queries or data samples), so its network is not one graph from the image '
                    'batch to that head: it cannot run in ONNX Runtime through tools/test.py '
                    '--onnx'
                )
            return head
    raise ValueError(
        f'{name} has none of the heads {HEADS} that end an exported network: '
        'tools/test.py --onnx supports single-stage detectors, segmentors, classifiers '
        'and pose estimators'
    )


def required_arguments(function) -> List[str]:
    """The parameters of ``function`` without a default (``*args`` / ``**kwargs`` not)."""
    return [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def regroup(head: nn.Module, outputs: List[Tensor]) -> Structure:
    """The flat graph outputs in the structure of ``head.forward``'s: a dense
    detection head's tuple of per-level lists (class scores, box deltas, ...),
    a single tensor (segmentation logits, class logits) or a list (HigherHRNet's
    outputs)."""
    prior_generator = getattr(head, 'prior_generator', None)
    if prior_generator is not None:
        levels = prior_generator.num_levels
        if len(outputs) % levels:
            raise ValueError(
                f'{len(outputs)} graph outputs for a head of {levels} levels: '
                'not an export of this model'
            )
        return tuple(outputs[i : i + levels] for i in range(0, len(outputs), levels))
    if len(outputs) == 1:
        return outputs[0]
    return list(outputs)


class OnnxRuntimeHead:
    """``head.forward`` replaced: the image batch in, the graph's raw outputs
    (in the structure of the head's) out."""

    def __init__(self, session, head: nn.Module) -> None:
        self.session = session
        self.head = head
        shape = session.get_inputs()[0].shape
        self.static_size = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None

    def __call__(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Structure:
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f'expected the image batch, got {type(inputs).__name__}: the model calls its '
                'head with other features than extract_feat(inputs)'
            )
        if self.static_size is not None and tuple(inputs.shape[2:]) != self.static_size:
            raise ValueError(
                f'the ONNX file was exported at {self.static_size} and the test pipeline gives '
                f'{tuple(inputs.shape[2:])}: export with --dynamic, or at the size the pipeline '
                'gives every image'
            )
        outputs = run_ort(self.session, inputs.float())
        return regroup(self.head, [torch.from_numpy(np.ascontiguousarray(o)) for o in outputs])


def pass_through(inputs: Tensor, *args, **kwargs) -> Tensor:
    """``extract_feat`` replaced: the image batch is the graph's input."""
    return inputs


def run_network_in_onnx_runtime(model: nn.Module, session) -> nn.Module:
    """Make ``model`` (eval mode) run its network in the ONNX Runtime ``session``
    at test time; in place, returns ``model``. Its ``extract_feat`` passes the
    image batch through and its last head's ``forward`` runs the graph."""
    head = network_head(model)
    model.extract_feat = pass_through
    head.forward = OnnxRuntimeHead(session, head)
    return model.eval()
