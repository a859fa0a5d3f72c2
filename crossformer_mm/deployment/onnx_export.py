"""ONNX export of CrossFormer backbones and whole models, and ONNX Runtime inference.

Exporters (``exporter``):

* ``'dynamo'`` (the default of ``torch.onnx.export`` since torch 2.9, needs
  ``onnxscript``): ``torch.export`` traces the model with symbolic batch,
  height and width; one graph serves every size from ``min_size`` up.
* ``'torchscript'`` (``dynamo=False``): the JIT tracer, with ``dynamic_axes``;
  its sizes are traced as 0-dim tensors, so the layout arithmetic stays in the
  graph, and the one decision on them (``min(H, W) <= G``) is taken at the
  traced size, as with the dynamo exporter. About 10x faster to export.

The small-map limit: the layout of an LSDA block changes when its map's short
side is at most its group size (:func:`crossformer_mm.models.layers.lsda.group_layout`),
a decision taken at trace time. The dynamic graph is exported for maps above
it at every stage and holds for inputs of at least :func:`min_dynamic_size`
(256 for the released archs, ``32 * (G + 1)``), plus the sizes where both
rules give the same groups (square last-stage maps of exactly ``G``, e.g.
224x224 with the ICLR archs). Smaller inputs: export at that static size.
"""

import contextlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .query_models import is_query_model, raw_outputs, traceable_query_models
from .query_models import postprocess as query_postprocess
from .rewrites import exact_for_export, mmseg_upsample, traceable_upsampling

EXPORTERS = ('dynamo', 'torchscript')
#: The opset of the exported graph: what the dynamo exporter's operator
#: library targets (standard operators; no ``Attention`` of opset 23).
OPSET = 18
INPUT_NAME = 'input'


def min_dynamic_size(backbone: nn.Module) -> int:
    """The smallest input side for which every stage that ``backbone`` (a
    :class:`~crossformer_mm.models.backbones.CrossFormer`) runs groups its map
    with the regular (not the small-map) layout; see :func:`small_map_limit`."""
    return small_map_limit(backbone.arch_settings['group_size'][: max(backbone.out_indices) + 1])


def small_map_limit(group_sizes: Sequence[int]) -> int:
    """``max_i 4 * 2**i * (G_i + 1)``: from this input side up, the map of
    stage ``i`` (stride ``4 * 2**i``) is larger than its group size ``G_i``."""
    return max(4 * 2**i * (g + 1) for i, g in enumerate(group_sizes))


def find_backbone(model: nn.Module) -> Optional[nn.Module]:
    """The CrossFormer inside ``model`` (or ``model`` itself), else None."""
    from crossformer_mm.models.backbones import CrossFormer

    for module in model.modules():
        if isinstance(module, CrossFormer):
            return module
    return None


def is_two_stage(model: nn.Module) -> bool:
    """Whether ``model`` is an mmdet two-stage detector (an RPN and a RoI head)."""
    return bool(getattr(model, 'with_rpn', False)) and hasattr(model, 'roi_head')


class TensorOutputs(nn.Module):
    """``model`` as a function of one image batch returning a flat tuple of
    tensors: the raw outputs of an OpenMMLab model (``mode='tensor'``: the
    detector's head outputs before decoding and NMS, the segmentor's logits,
    the classifier's logits, the pose head's heatmaps and tags), or a
    backbone's stage outputs.

    A two-stage detector's ``mode='tensor'`` runs the RPN's proposal NMS and
    needs image metas, so it does not trace: this is the first graph of its
    chain (:mod:`.two_stage`): the RPN head's class scores of every level, its
    box deltas of every level, then the neck's maps that the RoI head pools
    from; the RoI head is exported as graphs of its own
    (:func:`~.two_stage.export_two_stage`).
    """

    def __init__(self, model: nn.Module, mode_tensor: bool = True) -> None:
        super().__init__()
        self.model = model
        self.mode_tensor = mode_tensor

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        if not self.mode_tensor:
            out = self.model(inputs)
        elif is_query_model(self.model):
            out = raw_outputs(self.model, inputs)
        elif is_two_stage(self.model):
            from .two_stage import first_stage_outputs

            out = first_stage_outputs(self.model, inputs)
        else:
            out = self.model(inputs, mode='tensor')
        return tuple(flatten_outputs(out))


def flatten_outputs(out) -> List[Tensor]:
    """Tensors of a nested tuple / list / dict, in order."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten_outputs(item)]
    raise TypeError(f'cannot export an output of type {type(out).__name__}: expected tensors')


def static_size_modules(model: nn.Module) -> List[str]:
    """Names of the modules of ``model`` whose output size both exporters would bake
    in at the traced size, so that a dynamic graph would be wrong at other sizes:
    mmseg's ``Upsample`` with a non-integer ``scale_factor`` (with an integer one, as in
    Semantic FPN's ``FPNHead``, :func:`~.rewrites.traceable_upsampling` exports it
    exactly)."""
    upsample = mmseg_upsample()
    if upsample is None:
        return []
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, upsample) and not exact_for_export(module)
    ]


def export_onnx(
    model: nn.Module,
    example: Tensor,
    path: str,
    dynamic: bool = True,
    exporter: str = 'dynamo',
    min_size: int = 32,
    opset: int = OPSET,
) -> List[str]:
    """Export ``model`` (one image batch in, a tuple of tensors out) to ``path``.

    Args:
        example: (B, C, H, W) input to trace with; with ``dynamic`` and the
            dynamo exporter its side must be at least ``min_size`` (a batch of
            1 is traced as 2, which torch.export would otherwise fix to 1).
        dynamic: batch, height and width dynamic (the outputs' too).
        min_size: the smallest height / width the dynamic graph is for
            (:func:`min_dynamic_size` for a CrossFormer).

    Raises:
        ValueError: ``dynamic`` for a model with :func:`static_size_modules`.

    Returns:
        The output names (``output0``, ...).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    baked = static_size_modules(model) if dynamic else []
    if baked:
        raise ValueError(
            f'{baked[0]} (and {len(baked) - 1} more) upsamples by a non-integer factor and '
            'computes its output size as Python ints, which the exporters fix at the traced '
            'size: export this model at a static size (dynamic=False, no --dynamic), once per '
            'input size'
        )
    if dynamic and min(example.shape[-2:]) < min_size:
        raise ValueError(
            f"the example input {tuple(example.shape[-2:])} is below the dynamic graph's "
            f'minimum side {min_size}: trace with a larger example'
        )
    model = model.eval()
    with torch.no_grad():
        outputs = model(example)
    names = [f'output{i}' for i in range(len(outputs))]
    # mmseg's Upsample with its size traced (the exact same numbers, see static_size_modules);
    # DINO / Mask2Former with their level sizes traced (query_models.traceable_query_models)
    query = is_query_model(getattr(model, 'model', model))
    with (
        traceable_upsampling(),
        traceable_query_models() if query else contextlib.nullcontext(),
        torch.no_grad(),
    ):
        if exporter == 'torchscript':
            dynamic_axes = None
            if dynamic:
                dynamic_axes = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}}
                for name, out in zip(names, outputs):
                    dynamic_axes[name] = {i: f'{name}_dim{i}' for i in range(out.dim())}
            torch.onnx.export(
                model,
                (example,),
                path,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes=dynamic_axes,
                opset_version=min(opset, 17),
            )
            return names
        dynamic_shapes = None
        if dynamic:
            if example.shape[0] == 1:
                example = example.expand(2, -1, -1, -1).contiguous()
            dim = torch.export.Dim
            dynamic_shapes = (
                {0: dim.DYNAMIC, 2: dim.DYNAMIC(min=min_size), 3: dim.DYNAMIC(min=min_size)},
            )
        program = torch.onnx.export(
            model,
            (example,),
            dynamic_shapes=dynamic_shapes,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=names,
            opset_version=opset,
            verbose=False,
        )
    program.save(path)
    return names


def non_standard_ops(path: str) -> List[str]:
    """Operators of the ONNX file outside the standard ``ai.onnx`` domain."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return sorted(
        {f'{n.domain}::{n.op_type}' for n in graph.node if n.domain not in ('', 'ai.onnx')}
    )


def ort_session(path: str, threads: Optional[int] = None, optimize: bool = True):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads (default:
    torch's), graph optimisations on (all levels) unless ``optimize=False``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_ort(session, inputs: Tensor) -> List[np.ndarray]:
    """Outputs of the session on an image batch."""
    return session.run(None, {session.get_inputs()[0].name: inputs.detach().cpu().numpy()})


def relative_errors(outputs: Sequence[np.ndarray], references: Sequence[Tensor]) -> List[float]:
    """``max|out - ref| / max|ref|`` per output (the agreement of the README)."""
    if len(outputs) != len(references):
        raise ValueError(f'{len(outputs)} outputs against {len(references)} references')
    errors = []
    for out, ref in zip(outputs, references):
        ref = ref.detach().float().cpu().numpy()
        if out.shape != ref.shape:
            raise ValueError(f"output shape {out.shape} differs from PyTorch's {ref.shape}")
        errors.append(float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12)))
    return errors


def compare(session, model, inputs: Tensor) -> Dict[str, List[float]]:
    """ONNX Runtime against eager PyTorch (a module, put in eval mode, or a
    function of the input) on ``inputs``: relative errors per output."""
    if isinstance(model, nn.Module):
        model.eval()
    with torch.no_grad():
        references = flatten_outputs(model(inputs))
    return {'relative_error': relative_errors(run_ort(session, inputs), references)}


def build_model(config, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None):
    """The model of an OpenMMLab config of this repository (detection,
    segmentation, pose or classification), in eval mode on CPU, with the
    checkpoint's weights (``None``: the config's initialisation)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings

        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    if checkpoint is not None and 'backbone' in model_cfg:
        model_cfg.backbone.pop('init_cfg', None)  # the checkpoint has the backbone too
        model_cfg.backbone.pop('pretrained', None)
        model_cfg.pop('pretrained', None)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu')
    elif hasattr(model, 'init_weights'):
        model.init_weights()
    model.cfg = cfg
    return model.eval()


def preprocess(model: nn.Module, image: np.ndarray, size: Optional[Tuple[int, int]] = None):
    """An image (H, W, 3, BGR as ``mmcv.imread``) -> the model's normalised
    input batch (1, 3, H', W') and its data sample, through the model's own
    ``data_preprocessor`` (colour order, mean / std, padding to its size
    divisor): the preprocessing an exported model expects. ``size``: resize to
    (H, W) first."""
    import mmcv

    if size is not None:
        image = mmcv.imresize(image, (size[1], size[0]))
    from mmengine.structures import BaseDataElement

    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    shape = tuple(image.shape[:2])
    # a data sample for the preprocessors that record the padding in it (mmpose's needs one)
    sample = BaseDataElement(metainfo=dict(img_shape=shape, ori_shape=shape))
    data = model.data_preprocessor(dict(inputs=[tensor], data_samples=[sample]), False)
    return data['inputs'], image


@dataclass
class Result:
    """A post-processed result: ``kind`` ('class', 'label_map', 'boxes',
    'keypoints' or 'raw') and its arrays."""

    kind: str
    arrays: Dict[str, np.ndarray]

    @property
    def summary(self) -> str:
        if self.kind == 'class':
            return f'class {int(self.arrays["label"])} (logit {float(self.arrays["logit"]):.4f})'
        if self.kind == 'label_map':
            labels, counts = np.unique(self.arrays['label_map'], return_counts=True)
            label_map = self.arrays['label_map']
            counts = dict(zip(labels.tolist(), counts.tolist()))
            return f'label map {label_map.shape}, pixels per label {counts}'
        if self.kind == 'boxes':
            return (
                f'{len(self.arrays["bboxes"])} boxes; first: '
                f'{self.arrays["bboxes"][:3].round(2).tolist()} '
                f'labels {self.arrays["labels"][:3].tolist()}'
            )
        if self.kind == 'keypoints':
            return (
                f'{len(self.arrays["keypoints"])} people; first: '
                f'{self.arrays["keypoints"][:1].round(2).tolist()}'
            )
        return 'raw outputs ' + ', '.join(str(a.shape) for a in self.arrays.values())

    def equals(self, other: 'Result', box_tolerance: float = 1e-2) -> bool:
        """The same class / label map / labels and boxes or keypoints (within
        ``box_tolerance`` pixels; scores within 1e-4); raw outputs within 1e-4
        relative. Boxes are compared as a set: two boxes whose scores differ by
        less than 1e-4 may come in either order (NMS sorts by score)."""
        if self.kind != other.kind or set(self.arrays) != set(other.arrays):
            return False
        if self.kind == 'boxes':
            return _same_boxes(self.arrays, other.arrays, box_tolerance)
        for key, a in self.arrays.items():
            b = other.arrays[key]
            if a.shape != b.shape:
                return False
            if self.kind == 'raw':
                if np.abs(a - b).max() > 1e-4 * max(np.abs(b).max(), 1e-12):
                    return False
            elif key in ('bboxes', 'keypoints'):
                if a.size and np.abs(a - b).max() > box_tolerance:
                    return False
            elif key in ('scores', 'logit', 'keypoint_scores', 'person_scores'):
                if a.size and np.abs(a - b).max() > 1e-4:
                    return False
            elif not np.array_equal(a, b):
                return False
        return True


def _same_boxes(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], tolerance: float) -> bool:
    """Whether every box of ``a`` pairs with its own box of ``b``: the same
    label, corners within ``tolerance`` pixels, scores within 1e-4."""
    if any(a[key].shape != b[key].shape for key in ('bboxes', 'scores', 'labels')):
        return False
    close = (
        (np.abs(a['bboxes'][:, None] - b['bboxes'][None]).max(-1) <= tolerance)
        & (np.abs(a['scores'][:, None] - b['scores'][None]) <= 1e-4)
        & (a['labels'][:, None] == b['labels'][None])
    )
    free = np.ones(len(close), dtype=bool)
    for row in close:  # greedy: the boxes of one image are far apart next to the tolerance
        candidates = np.nonzero(row & free)[0]
        if not len(candidates):
            return False
        free[candidates[0]] = False
    return True


def postprocess(
    model: nn.Module, outputs: Sequence[Tensor], inputs: Tensor, roi_stages=None
) -> Result:
    """The PyTorch model's post-processing of its raw outputs (from PyTorch or
    from ONNX Runtime) for the one image of ``inputs``: classifier: the class
    of the largest logit; segmentor: logits resized to the input, arg-max;
    single-stage detector: the head's ``predict_by_feat`` (decoding, score
    threshold, NMS); two-stage detector: the detections (boxes, scores, labels
    and masks) of :func:`~.two_stage.two_stage_predict` through its RoI graphs
    ``roi_stages`` (a :class:`~.two_stage.RoIStages`: ONNX Runtime sessions or
    the PyTorch modules); HigherHRNet: keypoints grouped as its head's ``predict``
    without flip test (the graph sees one view)."""
    import torch.nn.functional as F

    if is_query_model(model):  # before EncoderDecoder: mmseg's Mask2Former is one
        return query_postprocess(model, outputs, inputs)
    name = type(model).__name__
    if name == 'ImageClassifier':
        logits = outputs[0][0]
        return Result(
            'class', dict(label=np.array(int(logits.argmax())), logit=logits.max().numpy())
        )
    if name == 'EncoderDecoder':
        logits = F.interpolate(
            outputs[0], size=inputs.shape[-2:], mode='bilinear', align_corners=model.align_corners
        )
        return Result('label_map', dict(label_map=logits[0].argmax(0).numpy()))
    if is_two_stage(model):
        from .two_stage import instances_result, two_stage_predict

        if roi_stages is None:
            raise ValueError(
                'a two-stage detector needs its RoI graphs to post-process the first '
                "graph's outputs: pass roi_stages=RoIStages.onnx(model, 'model.onnx') (ONNX "
                'Runtime) or RoIStages.pytorch(model) (crossformer_mm.deployment.two_stage)'
            )
        return instances_result(two_stage_predict(model, outputs, inputs, roi_stages)[0])
    head = getattr(model, 'bbox_head', None)
    if head is not None and hasattr(head, 'predict_by_feat'):
        levels = len(outputs) // 2
        meta = dict(
            img_shape=tuple(inputs.shape[-2:]),
            pad_shape=tuple(inputs.shape[-2:]),
            ori_shape=tuple(inputs.shape[-2:]),
            scale_factor=(1.0, 1.0),
        )
        with torch.no_grad():
            instances = head.predict_by_feat(
                list(outputs[:levels]),
                list(outputs[levels:]),
                batch_img_metas=[meta],
                rescale=False,
            )[0]
        return Result(
            'boxes',
            dict(
                bboxes=instances.bboxes.numpy(),
                scores=instances.scores.numpy(),
                labels=instances.labels.numpy(),
            ),
        )
    head = getattr(model, 'head', None)
    if hasattr(head, '_merge_outputs') and getattr(head, 'decoder', None) is not None:
        return _pose_keypoints(head, outputs, tuple(inputs.shape[-2:]))
    return Result('raw', {f'output{i}': o.numpy() for i, o in enumerate(outputs)})


def _pose_keypoints(head: nn.Module, outputs: Sequence[Tensor], size: Tuple[int, int]) -> Result:
    """HigherHRNet's test-time decoding of one view (no flip test, one scale):
    the heatmaps of every output averaged at 1/2, heatmaps and output-0 tags
    resized to the input, grouped by the head's decoder (as
    ``AEHigherResolutionHead.predict``)."""
    import torch.nn.functional as F

    with torch.no_grad():
        heatmaps, tags = head._merge_outputs(list(outputs), None)
        heatmaps = F.interpolate(heatmaps, size=size, mode='bilinear', align_corners=False)
        b, levels, k, h, w = tags.shape
        tags = (
            F.interpolate(
                tags.reshape(b, levels * k, h, w), size=size, mode='bilinear', align_corners=False
            )
            .reshape(b, levels, k, *size)
            .permute(0, 2, 3, 4, 1)
        )
        keypoints, scores, person_scores = head.decoder.batch_decode(heatmaps, tags)
    return Result(
        'keypoints',
        dict(
            keypoints=np.asarray(keypoints[0], dtype=np.float32),
            keypoint_scores=np.asarray(scores[0], dtype=np.float32),
            person_scores=np.asarray(person_scores[0], dtype=np.float32),
        ),
    )
