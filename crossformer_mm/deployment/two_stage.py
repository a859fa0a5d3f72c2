"""Two-stage detectors (Mask R-CNN, Cascade (Mask) R-CNN) as a chain of three ONNX graphs,
each up to raw outputs, with mmdet's own post-processing (proposals, box NMS, mask pasting)
between them, in Python, as for the single-stage heads.

Graphs (standard ONNX operators; dynamic batch, height, width and number of RoIs):

1. ``model.onnx`` (:class:`~.onnx_export.TensorOutputs`): image batch (B, 3, H, W) -> the
   RPN head's class scores of every level, its box deltas of every level, then the neck's
   first :func:`feature_levels` maps (those the RoI extractors pool from).
2. ``model.roi_head.onnx`` (:class:`BoxStage`): those maps, RoIs (N, 5) ``[batch index,
   x1, y1, x2, y2]`` and, for a cascade, the image sizes (B, 2) ``(h, w)`` -> the box head's
   class scores (N, classes + 1) and box deltas (N, 4 or 4 * classes). A cascade's graph holds
   every stage: the scores of every stage, the deltas of every stage, then the last stage's
   RoIs, with the between-stage refinement (``CascadeRoIHead._refine_roi``: arg-max class,
   its deltas decoded, clipped to the image) in the graph.
3. ``model.mask_head.onnx`` (:class:`MaskStage`): the maps and the final boxes as RoIs ->
   the mask logits (N, classes, 28, 28), one output per cascade stage.

Between them (:func:`two_stage_predict`): the RPN's ``predict_by_feat`` (the proposals), the
last box head's ``predict_by_feat`` (decoding, score threshold, NMS; a cascade's scores
averaged over its stages first, as mmdet does), the mask head's ``predict_by_feat``
(a cascade's stage masks averaged after the sigmoid by ``merge_aug_masks``). The RoI
pooling is exported through :func:`~.rewrites.traceable_roi_extraction` (the eager model
is not changed).
"""

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .onnx_export import EXPORTERS, OPSET, Result, TensorOutputs, export_onnx, relative_errors
from .rewrites import roi_extraction_not_exportable, traceable_roi_extraction

#: Suffixes of the RoI graphs' files beside ``model.onnx`` (``model.roi_head.onnx``, ...).
ROI_HEAD_SUFFIX = '.roi_head.onnx'
MASK_HEAD_SUFFIX = '.mask_head.onnx'


def chain_paths(path: str) -> Dict[str, str]:
    """The files of the chain exported to ``path``: ``{'model': path, 'roi_head': ...,
    'mask_head': ...}`` (``model.onnx`` -> ``model.roi_head.onnx``, ``model.mask_head.onnx``)."""
    stem = path[: -len('.onnx')] if path.endswith('.onnx') else path
    return dict(model=path, roi_head=stem + ROI_HEAD_SUFFIX, mask_head=stem + MASK_HEAD_SUFFIX)


def is_cascade(model: nn.Module) -> bool:
    """Whether the RoI head of ``model`` has several box stages (``CascadeRoIHead``)."""
    return hasattr(model.roi_head, 'num_stages')


def num_stages(model: nn.Module) -> int:
    return int(getattr(model.roi_head, 'num_stages', 1))


def _extractors(model: nn.Module, name: str) -> List[nn.Module]:
    extractor = getattr(model.roi_head, name, None)
    if extractor is None:
        return []
    return list(extractor) if isinstance(extractor, nn.ModuleList) else [extractor]


def feature_levels(model: nn.Module) -> int:
    """How many of the neck's maps the RoI extractors pool from (4 with FPN)."""
    extractors = _extractors(model, 'bbox_roi_extractor') + _extractors(model, 'mask_roi_extractor')
    return max(extractor.num_inputs for extractor in extractors)


def with_mask(model: nn.Module) -> bool:
    return bool(getattr(model.roi_head, 'with_mask', False))


def first_stage_outputs(model: nn.Module, inputs: Tensor) -> List[Tensor]:
    """Graph 1: RPN class scores of every level, box deltas of every level, then the neck's
    first :func:`feature_levels` maps."""
    from .onnx_export import flatten_outputs

    feats = model.extract_feat(inputs)
    return flatten_outputs(model.rpn_head(feats)) + list(feats[: feature_levels(model)])


def _refine(
    head: nn.Module, rois: Tensor, cls_score: Tensor, bbox_pred: Tensor, img_shapes: Tensor
) -> Tensor:
    """``CascadeRoIHead._refine_roi``'s step from one stage to the next, for all RoIs at once
    with a per-RoI image size: (N, 5) RoIs -> (N, 5) refined RoIs. The same numbers as
    ``bbox_head.regress_by_class`` (mmdet's ``delta2bbox``, then clipped to the image)."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox

    coder = head.bbox_coder
    if type(coder) is not DeltaXYWHBBoxCoder:
        raise ValueError(
            f'exporting a cascade refines its boxes with DeltaXYWHBBoxCoder only, this head '
            f'has {type(coder).__name__}: export the RoI head with mmdeploy instead'
        )
    if head.custom_activation:
        cls_score = head.loss_cls.get_activation(cls_score)
    if not head.reg_class_agnostic:
        label = cls_score[:, :-1].argmax(dim=1) * 4
        inds = torch.stack([label + i for i in range(4)], 1)
        bbox_pred = torch.gather(bbox_pred, 1, inds)
    boxes = delta2bbox(
        rois[:, 1:],
        bbox_pred,
        coder.means,
        coder.stds,
        None,
        16 / 1000,  # regress_by_class calls decode with its default wh_ratio_clip
        coder.clip_border,
        coder.add_ctr_clamp,
        coder.ctr_clamp,
    )
    if coder.clip_border:  # delta2bbox's clamp_(min=0, max=w / h), with the RoI's image size
        size = img_shapes.to(boxes.dtype)[rois[:, 0].long()]
        height, width = size[:, :1], size[:, 1:]
        x = torch.minimum(boxes[:, 0::2].clamp(min=0), width)
        y = torch.minimum(boxes[:, 1::2].clamp(min=0), height)
        boxes = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
    return torch.cat([rois[:, :1], boxes], 1)


class RoIStage(nn.Module):
    """A graph of the RoI head of ``model``: its maps (``levels`` of them) and RoIs in;
    ``stages``: a cascade's stage count, 0 for a standard RoI head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.roi_head = model.roi_head
        self.levels = feature_levels(model)
        self.stages = num_stages(model) if is_cascade(model) else 0


class BoxStage(RoIStage):
    """Graph 2: ``(*maps, rois[, img_shapes])`` -> the box head's raw outputs: a standard
    RoI head's class scores (N, classes + 1) and deltas; a cascade's scores of every stage,
    deltas of every stage, then the RoIs of the last stage (refined in the graph)."""

    def forward(self, *args: Tensor) -> Tuple[Tensor, ...]:
        feats, rois = args[: self.levels], args[self.levels]
        if not self.stages:
            out = self.roi_head._bbox_forward(feats, rois)
            return out['cls_score'], out['bbox_pred']
        img_shapes = args[self.levels + 1]
        scores, deltas = [], []
        for stage in range(self.stages):
            if stage:
                head = self.roi_head.bbox_head[stage - 1]
                rois = _refine(head, rois, scores[-1], deltas[-1], img_shapes)
            out = self.roi_head._bbox_forward(stage, feats, rois)
            scores.append(out['cls_score'])
            deltas.append(out['bbox_pred'])
        return (*scores, *deltas, rois)


class MaskStage(RoIStage):
    """Graph 3: ``(*maps, rois)`` -> mask logits (N, classes, h, w), one per cascade stage."""

    def forward(self, *args: Tensor) -> Tuple[Tensor, ...]:
        feats, rois = args[: self.levels], args[self.levels]
        if not self.stages:
            return (self.roi_head._mask_forward(feats, rois)['mask_preds'],)
        return tuple(
            self.roi_head._mask_forward(stage, feats, rois)['mask_preds']
            for stage in range(self.stages)
        )


class RoIStages:
    """Graphs 2 and 3 as functions of tensors: ONNX Runtime sessions
    (:meth:`onnx`) or the PyTorch modules of the model (:meth:`pytorch`)."""

    def __init__(self, model: nn.Module, box, mask=None) -> None:
        self.model = model
        self._box, self._mask = box, mask

    @classmethod
    def pytorch(cls, model: nn.Module) -> 'RoIStages':
        """The eager modules (mmcv's RoIAlign, mmdet's level loop): the reference."""
        return cls(
            model, BoxStage(model).eval(), MaskStage(model).eval() if with_mask(model) else None
        )

    @classmethod
    def onnx(cls, model: nn.Module, path: str, threads: Optional[int] = None) -> 'RoIStages':
        """ONNX Runtime sessions of the graphs exported beside ``path`` (:func:`chain_paths`)."""
        from .onnx_export import ort_session

        paths = chain_paths(path)
        needed = ['roi_head'] + (['mask_head'] if with_mask(model) else [])
        missing = [paths[key] for key in needed if not osp.isfile(paths[key])]
        if missing:
            raise FileNotFoundError(
                f'{missing} not found: a two-stage detector is exported as {list(paths.values())}'
                ' (tools/deployment/export_onnx.py writes them all); keep them side by side'
            )
        mask = ort_session(paths['mask_head'], threads) if 'mask_head' in needed else None
        return cls(model, ort_session(paths['roi_head'], threads), mask)

    def _run(self, runner, args: Sequence[Tensor]) -> List[Tensor]:
        if isinstance(runner, nn.Module):
            with torch.no_grad():
                return list(runner(*args))
        names = [i.name for i in runner.get_inputs()]
        feed = {name: arg.detach().cpu().numpy() for name, arg in zip(names, args)}
        return [torch.from_numpy(o) for o in runner.run(None, feed)]

    def box(self, feats: Sequence[Tensor], rois: Tensor, img_shapes: Tensor) -> List[Tensor]:
        """Graph 2's outputs (see :class:`BoxStage`)."""
        args = [*feats, rois] + ([img_shapes] if is_cascade(self.model) else [])
        return self._run(self._box, args)

    def mask(self, feats: Sequence[Tensor], rois: Tensor) -> List[Tensor]:
        """Graph 3's outputs (see :class:`MaskStage`)."""
        return self._run(self._mask, [*feats, rois])


def _image_metas(inputs: Tensor) -> List[dict]:
    # as onnx_export.postprocess: the (padded) input is the image, not rescaled
    shape = tuple(inputs.shape[-2:])
    return [
        dict(img_shape=shape, pad_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))
        for _ in range(inputs.shape[0])
    ]


def img_shapes_tensor(metas: Sequence[dict]) -> Tensor:
    """(B, 2) ``(h, w)`` of the images: the cascade graph's clipping bounds."""
    return torch.tensor([list(meta['img_shape'][:2]) for meta in metas], dtype=torch.float32)


def two_stage_predict(
    model: nn.Module,
    outputs: Sequence[Tensor],
    inputs: Tensor,
    stages: RoIStages,
    raw: Optional[Dict[str, List[Tensor]]] = None,
) -> List:
    """The detections of every image of ``inputs`` (mmdet ``InstanceData``: bboxes, scores,
    labels[, masks]) from graph 1's ``outputs`` through graphs 2 and 3 (``stages``) and
    mmdet's post-processing between them (``rescale=False``: in input pixels). ``raw``
    (a dict) receives the inputs and outputs of graphs 2 and 3."""
    from mmdet.models.test_time_augs import merge_aug_masks
    from mmdet.structures.bbox import bbox2roi

    levels = feature_levels(model)
    rpn_outputs, feats = list(outputs[:-levels]), list(outputs[-levels:])
    metas = _image_metas(inputs)
    roi_head = model.roi_head
    half = len(rpn_outputs) // 2
    with torch.no_grad():
        proposals = model.rpn_head.predict_by_feat(
            rpn_outputs[:half], rpn_outputs[half:], batch_img_metas=metas, rescale=False
        )
        rois = bbox2roi([p.bboxes for p in proposals])
        counts = tuple(len(p) for p in proposals)
        if rois.shape[0] == 0:  # mmdet's predict_bbox on no proposals
            return roi_head.predict(
                tuple(feats), proposals, [_Sample(meta) for meta in metas], rescale=False
            )
        box_outputs = stages.box(feats, rois, img_shapes_tensor(metas))
        if raw is not None:
            raw['roi_head'] = dict(
                inputs=[*feats, rois, img_shapes_tensor(metas)], outputs=box_outputs
            )
        if is_cascade(model):
            n = num_stages(model)
            scores = sum(box_outputs[:n]) / float(n)  # CascadeRoIHead._refine_roi
            deltas, last_rois, head = (
                box_outputs[2 * n - 1],
                box_outputs[2 * n],
                roi_head.bbox_head[-1],
            )
        else:
            scores, deltas, last_rois, head = (
                box_outputs[0],
                box_outputs[1],
                rois,
                roi_head.bbox_head,
            )
        results = head.predict_by_feat(
            rois=last_rois.split(counts),
            cls_scores=scores.split(counts),
            bbox_preds=deltas.split(counts),
            batch_img_metas=metas,
            rcnn_test_cfg=roi_head.test_cfg,
            rescale=False,
        )
        if not with_mask(model):
            return results
        mask_rois = bbox2roi([r.bboxes for r in results])
        if mask_rois.shape[0] == 0:
            return roi_head.predict_mask(tuple(feats), metas, results, rescale=False)
        mask_outputs = stages.mask(feats, mask_rois)
        if raw is not None:
            raw['mask_head'] = dict(inputs=[*feats, mask_rois], outputs=mask_outputs)
        counts = [len(r) for r in results]
        if not is_cascade(model):
            return roi_head.mask_head.predict_by_feat(
                mask_preds=mask_outputs[0].split(counts),
                results_list=results,
                batch_img_metas=metas,
                rcnn_test_cfg=roi_head.test_cfg,
                rescale=False,
            )
        stage_masks = [[m.sigmoid() for m in out.split(counts)] for out in mask_outputs]
        merged = [
            merge_aug_masks([masks[i] for masks in stage_masks], meta)
            for i, meta in enumerate(metas)
        ]
        return roi_head.mask_head[-1].predict_by_feat(
            mask_preds=merged,
            results_list=results,
            batch_img_metas=metas,
            rcnn_test_cfg=roi_head.test_cfg,
            rescale=False,
            activate_map=True,
        )


class _Sample:
    """The ``metainfo`` of a data sample, for mmdet's code on empty proposals."""

    def __init__(self, meta: dict) -> None:
        self.metainfo = meta


class InstancesResult(Result):
    """A two-stage detector's result (kind ``'boxes'``: bboxes, scores, labels[, masks]).
    Equal: the boxes as :meth:`Result.equals`, and the masks of each pair of boxes but for
    at most ``mask_pixels`` pixels: a pixel whose pasted probability is at the 0.5
    threshold within the numeric noise may flip (measured with random weights, whose mask
    probabilities sit near 0.5: at most 2 pixels of a mask)."""

    def equals(self, other: Result, box_tolerance: float = 1e-2, mask_pixels: int = 8) -> bool:
        if not super().equals(other, box_tolerance):
            return False
        if 'masks' not in self.arrays:
            return True
        return bool(self.mask_differences(other, box_tolerance).max(initial=0) <= mask_pixels)

    def _pairs(self, other: Result, box_tolerance: float) -> List[Tuple[int, int]]:
        # the pairing of Result.equals' boxes (the same label, corners and score)
        a, b = self.arrays, other.arrays
        close = (
            (np.abs(a['bboxes'][:, None] - b['bboxes'][None]).max(-1) <= box_tolerance)
            & (np.abs(a['scores'][:, None] - b['scores'][None]) <= 1e-4)
            & (a['labels'][:, None] == b['labels'][None])
        )
        free, pairs = np.ones(len(close), dtype=bool), []
        for i, row in enumerate(close):
            candidates = np.nonzero(row & free)[0]
            if not len(candidates):
                raise ValueError(f'box {i} has no equal box in the other result')
            free[candidates[0]] = False
            pairs.append((i, int(candidates[0])))
        return pairs

    def mask_ious(self, other: Result, box_tolerance: float = 1e-2) -> np.ndarray:
        """IoU of the masks of each pair of equal boxes (1 where both are empty)."""
        ious = []
        for i, j in self._pairs(other, box_tolerance):
            a, b = self.arrays['masks'][i], other.arrays['masks'][j]
            union = int((a | b).sum())
            ious.append(int((a & b).sum()) / union if union else 1.0)
        return np.array(ious)

    def mask_differences(self, other: Result, box_tolerance: float = 1e-2) -> np.ndarray:
        """Pixels that differ between the masks of each pair of equal boxes."""
        return np.array(
            [
                int((self.arrays['masks'][i] != other.arrays['masks'][j]).sum())
                for i, j in self._pairs(other, box_tolerance)
            ],
            dtype=np.int64,
        )


def instances_result(instances) -> InstancesResult:
    """The :class:`InstancesResult` of one image's mmdet ``InstanceData``."""
    arrays = dict(
        bboxes=instances.bboxes.numpy(),
        scores=instances.scores.numpy(),
        labels=instances.labels.numpy(),
    )
    if 'masks' in instances:
        arrays['masks'] = np.asarray(instances.masks, dtype=bool)
    return InstancesResult('boxes', arrays)


def _export(
    module: nn.Module,
    args: Sequence[Tensor],
    input_names: Sequence[str],
    dynamic_inputs: Sequence[Dict[int, str]],
    path: str,
    dynamic: bool,
    exporter: str,
    opset: int,
) -> List[str]:
    """Export a graph of several inputs with the RoI pooling through
    :func:`~.rewrites.traceable_roi_extraction`; returns the output names."""
    with torch.no_grad():
        outputs = module(*args)
    names = [f'output{i}' for i in range(len(outputs))]
    with traceable_roi_extraction(), torch.no_grad():
        if exporter == 'torchscript':
            axes = None
            if dynamic:
                axes = {name: dims for name, dims in zip(input_names, dynamic_inputs)}
                axes.update({name: {0: 'rois'} for name in names})
            torch.onnx.export(
                module,
                tuple(args),
                path,
                dynamo=False,
                input_names=list(input_names),
                output_names=names,
                dynamic_axes=axes,
                opset_version=min(opset, 17),
            )
            return names
        shapes = None
        if dynamic:
            dim = torch.export.Dim
            # one entry per parameter: forward(*args) takes them all as one tuple
            shapes = (tuple({axis: dim.DYNAMIC for axis in dims} for dims in dynamic_inputs),)
        program = torch.onnx.export(
            module,
            tuple(args),
            dynamic_shapes=shapes,
            dynamo=True,
            input_names=list(input_names),
            output_names=names,
            opset_version=opset,
            verbose=False,
        )
    program.save(path)
    return names


def example_rois(inputs: Tensor, per_image: int = 8) -> Tensor:
    """RoIs to trace graphs 2 and 3 with: ``per_image`` boxes of growing size (every FPN
    level) in each image of ``inputs``: (B * per_image, 5)."""
    height, width = inputs.shape[-2:]
    rois = []
    for b in range(inputs.shape[0]):
        for i in range(per_image):
            side = min(height, width) * (i + 1) / per_image
            x, y = (width - side) * i / per_image, (height - side) * (per_image - i) / per_image
            rois.append([b, x, y, x + side, y + side * 0.75])
    return torch.tensor(rois, dtype=torch.float32)


def export_two_stage(
    model: nn.Module,
    example: Tensor,
    path: str,
    dynamic: bool = True,
    exporter: str = 'dynamo',
    min_size: int = 32,
    opset: int = OPSET,
) -> Dict[str, str]:
    """Export the two-stage detector ``model`` as its chain of graphs: graph 1 to ``path``
    (:func:`~.onnx_export.export_onnx` of :class:`~.onnx_export.TensorOutputs`), graphs 2
    and 3 beside it (:func:`chain_paths`), traced on ``example`` (B, 3, H, W) and
    :func:`example_rois`. ``dynamic``: batch, sizes and the number of RoIs dynamic.

    Returns:
        ``{'model': path, 'roi_head': ..., 'mask_head': ...}``: the files written.

    Raises:
        ValueError: a RoI extractor other than mmdet's ``SingleRoIExtractor`` with
            mmcv ``RoIAlign`` (average), or a cascade box coder other than DeltaXYWH.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    other = roi_extraction_not_exportable(model)
    if other:
        raise ValueError(
            f'{other}: the RoI extraction exports with mmdet SingleRoIExtractor and mmcv '
            'RoIAlign (average pooling) only; export this detector with mmdeploy'
        )
    model = model.eval()
    paths = chain_paths(path)
    export_onnx(TensorOutputs(model).eval(), example, path, dynamic, exporter, min_size, opset)
    if dynamic and exporter == 'dynamo' and example.shape[0] == 1:
        example = example.expand(2, -1, -1, -1).contiguous()  # no 0/1 specialisation
    with torch.no_grad():
        feats = first_stage_outputs(model, example)[-feature_levels(model) :]
    rois = example_rois(example)
    levels = [f'feat{i}' for i in range(len(feats))]
    level_axes = [
        {0: 'batch', 2: f'feat{i}_height', 3: f'feat{i}_width'} for i in range(len(feats))
    ]
    args, names, axes = [*feats, rois], [*levels, 'rois'], [*level_axes, {0: 'rois'}]
    if is_cascade(model):
        metas = _image_metas(example)
        args, names, axes = (
            args + [img_shapes_tensor(metas)],
            names + ['img_shapes'],
            axes + [{0: 'batch'}],
        )
    _export(BoxStage(model).eval(), args, names, axes, paths['roi_head'], dynamic, exporter, opset)
    written = dict(model=path, roi_head=paths['roi_head'])
    if with_mask(model):
        _export(
            MaskStage(model).eval(),
            [*feats, rois],
            [*levels, 'rois'],
            [*level_axes, {0: 'rois'}],
            paths['mask_head'],
            dynamic,
            exporter,
            opset,
        )
        written['mask_head'] = paths['mask_head']
    return written


def chain_errors(
    model: nn.Module, session, stages: RoIStages, inputs: Tensor
) -> Tuple[Dict[str, List[float]], Result, Result]:
    """Each graph of the chain against PyTorch on the same inputs: graph 1 on ``inputs``,
    graphs 2 and 3 on PyTorch's maps and RoIs (its proposals, its final boxes); and the
    post-processed results of the ONNX chain and of PyTorch's (one image).

    Returns:
        ``({'model': [...], 'roi_head': [...], 'mask_head': [...]}`` relative errors per
        output, the ONNX Runtime result, the PyTorch result).
    """
    from .onnx_export import run_ort

    wrapped = TensorOutputs(model).eval()
    with torch.no_grad():
        references = list(wrapped(inputs))
    outputs = [torch.from_numpy(o) for o in run_ort(session, inputs)]
    errors = {'model': relative_errors([o.numpy() for o in outputs], references)}
    reference_stages = RoIStages.pytorch(model)
    raw: Dict[str, Dict[str, List[Tensor]]] = {}
    expected = instances_result(
        two_stage_predict(model, references, inputs, reference_stages, raw)[0]
    )
    for key, graph in raw.items():  # graphs 2 and 3 on PyTorch's inputs
        run = stages.box if key == 'roi_head' else stages.mask
        ours = run(*_split_args(model, key, graph['inputs']))
        errors[key] = relative_errors([o.numpy() for o in ours], graph['outputs'])
    result = instances_result(two_stage_predict(model, outputs, inputs, stages)[0])
    return errors, result, expected


def _split_args(model: nn.Module, key: str, args: List[Tensor]) -> tuple:
    levels = feature_levels(model)
    if key == 'roi_head':
        return args[:levels], args[levels], args[levels + 1]
    return args[:levels], args[levels]
