"""Query-based models (mmdet DINO / Deformable DETR, mmdet Mask2Former, mmseg Mask2Former):
their raw outputs as a function of the image batch alone, their post-processing, and the
export-time replacements that make their deformable attention traceable at any size.

Their ``mode='tensor'`` needs data samples (``img_shape`` / ``batch_input_shape``), which
:func:`raw_outputs` builds from the input's own shape (one unpadded image size per batch, as
the exported graph sees it). The exported raw outputs are the last decoder layer's:

* DINO (any ``DeformableDETR``): class logits (B, Q, C) and normalised (cx, cy, w, h) boxes
  (B, Q, 4), what the head's ``predict_by_feat`` decodes;
* Mask2Former (mmdet and mmseg): class logits (B, Q, C + 1) and mask logits
  (B, Q, H / 4, W / 4).

**Why the rewrites.** mmdet passes the levels' sizes as a ``spatial_shapes`` tensor and reads
them back as numbers: mmcv's CPU deformable attention (``multi_scale_deformable_attn_pytorch``)
splits ``value`` and reshapes it by them, the encoders' reference points and DINO's proposals
are ``torch.linspace(..., H)`` grids, Mask2Former's pixel decoder splits its memory by them.
TorchScript tracing turns each such number into a constant (a graph right at the traced size
only, silently wrong elsewhere); ``torch.export`` refuses them (data-dependent sizes). Within
:func:`traceable_query_models`, the same computations take the sizes from the feature maps'
shapes (traced / symbolic), carried beside the tensor (:func:`level_sizes`): the value is cut
by slicing, the grids are ``arange`` (equal to ``linspace`` with a step of exactly 1), the
sampling is the same ``F.grid_sample`` (ONNX ``GridSample``, opset 16+). The same numbers as
mmcv's and mmdet's code; the eager model is not changed outside the context.
"""

import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The attribute of a ``spatial_shapes`` tensor holding its levels' (h, w) during export.
SIZES_ATTR = '_crossformer_mm_level_sizes'


def _classes():
    """mmdet's DETR detector base, MaskFormer detector and MaskFormer head classes."""
    from mmdet.models.dense_heads import MaskFormerHead
    from mmdet.models.detectors import DeformableDETR, MaskFormer

    return DeformableDETR, MaskFormer, MaskFormerHead


def _mmseg_encoder_decoder():
    try:
        from mmseg.models.segmentors import EncoderDecoder
    except ImportError:
        return None
    return EncoderDecoder


def query_model_kind(model: nn.Module) -> Optional[str]:
    """'detr' (mmdet ``DeformableDETR`` and DINO), 'mmdet_maskformer' (mmdet MaskFormer /
    Mask2Former), 'mmseg_maskformer' (an mmseg ``EncoderDecoder`` with a MaskFormer /
    Mask2Former decode head) or None."""
    try:
        detr, maskformer, maskformer_head = _classes()
    except ImportError:
        return None
    if isinstance(model, detr):
        return 'detr'
    if isinstance(model, maskformer):
        return 'mmdet_maskformer'
    encoder_decoder = _mmseg_encoder_decoder()
    if (
        encoder_decoder is not None
        and isinstance(model, encoder_decoder)
        and isinstance(getattr(model, 'decode_head', None), maskformer_head)
    ):
        return 'mmseg_maskformer'
    return None


def is_query_model(model: nn.Module) -> bool:
    """Whether ``model`` is a query-based model of :func:`raw_outputs`."""
    return query_model_kind(model) is not None


def data_samples(model: nn.Module, inputs: Tensor, count: int = 1) -> list:
    """``count`` data samples for the images of ``inputs`` (B, 3, H, W): ``img_shape``,
    ``batch_input_shape``, ``pad_shape`` and ``ori_shape`` all (H, W) taken from the
    input's shape (no padding inside the batch), scale factor 1. One sample describes
    every image of such a batch in these models' forward (which reads the batch size from
    the features); a sample per image would fix the batch size in a traced graph."""
    h, w = inputs.shape[-2:]
    meta = dict(
        img_shape=(h, w),
        batch_input_shape=(h, w),
        pad_shape=(h, w),
        ori_shape=(h, w),
        scale_factor=(1.0, 1.0),
    )
    if query_model_kind(model) == 'mmseg_maskformer':
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    samples = []
    for _ in range(count):
        sample = Sample()
        for key, value in meta.items():  # not ``metainfo=``: it deep-copies symbolic sizes
            sample.set_field(value, key, field_type='metainfo')
        samples.append(sample)
    return samples


def raw_outputs(model: nn.Module, inputs: Tensor) -> Tuple[Tensor, ...]:
    """The last decoder layer's raw outputs of a query-based model on ``inputs``
    (B, 3, H, W): DINO: class logits (B, Q, C), boxes (B, Q, 4) as normalised
    (cx, cy, w, h); Mask2Former: class logits (B, Q, C + 1), mask logits
    (B, Q, H / 4, W / 4)."""
    kind = query_model_kind(model)
    if kind is None:
        raise TypeError(
            f'{type(model).__name__} is not a query-based model (DINO / Deformable DETR, '
            'Mask2Former): export it through TensorOutputs'
        )
    samples = data_samples(model, inputs)
    feats = model.extract_feat(inputs)
    if kind == 'detr':
        head_inputs = model.forward_transformer(feats, samples)
        cls_scores, bbox_preds = model.bbox_head(**head_inputs)
    elif kind == 'mmdet_maskformer':
        cls_scores, bbox_preds = model.panoptic_head(feats, samples)
    else:
        cls_scores, bbox_preds = model.decode_head(feats, samples)
    return cls_scores[-1], bbox_preds[-1]


def postprocess(model: nn.Module, outputs: Sequence[Tensor], inputs: Tensor):
    """The PyTorch model's post-processing of :func:`raw_outputs` (from PyTorch or ONNX
    Runtime) for the one image of ``inputs``, without rescaling (the input's frame):

    * DINO: the head's ``predict_by_feat`` (top-k over queries x classes): 'boxes';
    * mmdet Mask2Former: as ``MaskFormerHead.predict`` and ``MaskFormerFusionHead``'s
      instance results (masks resized to the input, top-k, mask scores, boxes of the
      masks): 'boxes' with ``masks`` (K, H, W) bool beside boxes, scores and labels;
    * mmseg Mask2Former: as its head's ``predict`` (masks resized to the input,
      class-weighted mask probabilities) and the arg-max: 'label_map'.
    """
    from .onnx_export import Result

    kind = query_model_kind(model)
    cls_scores, preds = outputs[0], outputs[1]
    size = tuple(int(s) for s in inputs.shape[-2:])
    samples = data_samples(model, inputs)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        if kind == 'detr':
            instances = model.bbox_head.predict_by_feat(
                cls_scores[None, :1], preds[None, :1], batch_img_metas=metas, rescale=False
            )[0]
            arrays = {}
        elif kind == 'mmdet_maskformer':
            masks = F.interpolate(preds[:1], size=size, mode='bilinear', align_corners=False)
            result = model.panoptic_fusion_head.predict(
                cls_scores[:1], masks, samples, rescale=False
            )[0]
            if 'ins_results' not in result:
                raise ValueError(
                    "the model's test_cfg has instance_on=False: set "
                    'model.test_cfg.instance_on=True to post-process instances'
                )
            instances = result['ins_results']
            arrays = dict(masks=instances.masks.numpy())
        elif kind == 'mmseg_maskformer':
            logits = segmentation_logits(cls_scores[:1], preds[:1], size)
            return Result('label_map', dict(label_map=logits[0].argmax(0).numpy()))
        else:
            raise TypeError(f'{type(model).__name__} is not a query-based model')
    arrays.update(
        bboxes=instances.bboxes.numpy(),
        scores=instances.scores.numpy(),
        labels=instances.labels.numpy(),
    )
    return Result('boxes', arrays)


def segmentation_logits(cls_scores: Tensor, mask_preds: Tensor, size: Tuple[int, int]) -> Tensor:
    """mmseg Mask2Former's per-class logits (its head's ``predict``): the mask logits
    (B, Q, h, w) resized to ``size``, their probabilities weighted by the class
    probabilities (B, Q, C + 1, without the no-object class) -> (B, C, H, W)."""
    masks = F.interpolate(mask_preds, size=size, mode='bilinear', align_corners=False)
    probabilities = F.softmax(cls_scores, dim=-1)[..., :-1]
    return torch.einsum('bqc,bqhw->bchw', probabilities, masks.sigmoid())


# ---------------------------------------------------------------------------------------
# export-time replacements (applied by traceable_query_models only)


def with_level_sizes(spatial_shapes: Tensor, sizes: List[Tuple]) -> Tensor:
    """``spatial_shapes`` (L, 2) carrying its levels' (h, w) from the feature maps' shapes."""
    setattr(spatial_shapes, SIZES_ATTR, list(sizes))
    return spatial_shapes


def level_sizes(spatial_shapes: Tensor) -> List[Tuple]:
    """The levels' (h, w) that :func:`with_level_sizes` attached to ``spatial_shapes``."""
    sizes = getattr(spatial_shapes, SIZES_ATTR, None)
    if sizes is None:
        raise RuntimeError(
            'the deformable attention got a spatial_shapes tensor without the sizes of its '
            'feature maps: traceable_query_models() only knows where mmdet DeformableDETR / '
            'DINO and MSDeformAttnPixelDecoder build it; export other callers at a static size'
        )
    return sizes


def level_shapes(sizes: List[Tuple], device) -> Tensor:
    """The (L, 2) int64 ``spatial_shapes`` of the levels' (h, w), built from the traced
    sizes (``torch._shape_as_tensor`` does not pass ``torch.export``; ``torch.tensor`` of
    traced sizes is a constant for the TorchScript tracer), carrying them."""
    shapes = [
        torch.stack(
            [
                torch.scalar_tensor(h, dtype=torch.long, device=device),
                torch.scalar_tensor(w, dtype=torch.long, device=device),
            ]
        )
        for h, w in sizes
    ]
    return with_level_sizes(torch.stack(shapes), sizes)


def deformable_attention_for_export(
    value: Tensor, sizes: List[Tuple], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """mmcv's ``multi_scale_deformable_attn_pytorch`` with the levels' sizes as traced
    sizes: value (B, S, heads, d), sampling locations (B, Q, heads, L, P, 2) in [0, 1],
    attention weights (B, Q, heads, L, P) -> (B, Q, heads * d)."""
    bs, _, num_heads, embed_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    grids = 2 * sampling_locations - 1
    sampled = []
    start = 0
    for level, (h, w) in enumerate(sizes):
        # (B, h * w, heads, d) -> (B * heads, d, h, w)
        value_l = (
            value[:, start : start + h * w]
            .flatten(2)
            .transpose(1, 2)
            .reshape(bs * num_heads, embed_dims, h, w)
        )
        start = start + h * w
        # (B, Q, heads, P, 2) -> (B * heads, Q, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(
                value_l, grid_l, mode='bilinear', padding_mode='zeros', align_corners=False
            )
        )
    weights = attention_weights.transpose(1, 2).reshape(
        bs * num_heads, 1, num_queries, num_levels * num_points
    )
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return output.view(bs, num_heads * embed_dims, num_queries).transpose(1, 2).contiguous()


def msda_forward_for_export(
    self: nn.Module,
    query: Tensor,
    key: Optional[Tensor] = None,
    value: Optional[Tensor] = None,
    identity: Optional[Tensor] = None,
    query_pos: Optional[Tensor] = None,
    key_padding_mask: Optional[Tensor] = None,
    reference_points: Optional[Tensor] = None,
    spatial_shapes: Optional[Tensor] = None,
    level_start_index: Optional[Tensor] = None,
    **kwargs,
) -> Tensor:
    """mmcv ``MultiScaleDeformableAttention.forward`` (its CPU path) through
    :func:`deformable_attention_for_export`, without the data-dependent check of
    ``spatial_shapes`` against the value's length (the sizes come from the maps)."""
    sizes = level_sizes(spatial_shapes)
    if value is None:
        value = query
    if identity is None:
        identity = query
    if query_pos is not None:
        query = query + query_pos
    if not self.batch_first:
        query = query.permute(1, 0, 2)
        value = value.permute(1, 0, 2)
    bs, num_query, _ = query.shape
    bs, num_value, _ = value.shape
    value = self.value_proj(value)
    if key_padding_mask is not None:
        value = value.masked_fill(key_padding_mask[..., None], 0.0)
    value = value.view(bs, num_value, self.num_heads, -1)
    offsets = self.sampling_offsets(query).view(
        bs, num_query, self.num_heads, self.num_levels, self.num_points, 2
    )
    weights = self.attention_weights(query).view(
        bs, num_query, self.num_heads, self.num_levels * self.num_points
    )
    weights = weights.softmax(-1).view(
        bs, num_query, self.num_heads, self.num_levels, self.num_points
    )
    if reference_points.shape[-1] == 2:
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )
    elif reference_points.shape[-1] == 4:
        locations = (
            reference_points[:, :, None, :, None, :2]
            + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5
        )
    else:
        raise ValueError(
            f'the last dimension of reference_points must be 2 or 4, got '
            f'{reference_points.shape[-1]}'
        )
    output = self.output_proj(deformable_attention_for_export(value, sizes, locations, weights))
    if not self.batch_first:
        output = output.permute(1, 0, 2)
    return self.dropout(output) + identity


def encoder_reference_points_for_export(
    spatial_shapes: Tensor, valid_ratios: Tensor, device
) -> Tensor:
    """``DeformableDetrTransformerEncoder.get_encoder_reference_points`` with the grids
    as ``arange(n) + 0.5`` (``linspace(0.5, n - 0.5, n)``, step exactly 1):
    (B, sum h * w, L, 2)."""
    points = []
    for lvl, (h, w) in enumerate(level_sizes(spatial_shapes)):
        ref_y, ref_x = torch.meshgrid(
            torch.arange(h, dtype=torch.float32, device=device) + 0.5,
            torch.arange(w, dtype=torch.float32, device=device) + 0.5,
            indexing='ij',
        )
        ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        points.append(torch.stack((ref_x, ref_y), -1))
    reference_points = torch.cat(points, 1)
    return reference_points[:, :, None] * valid_ratios[:, None]


def encoder_output_proposals_for_export(
    self: nn.Module, memory: Tensor, memory_mask: Optional[Tensor], spatial_shapes: Tensor
) -> Tuple[Tensor, Tensor]:
    """``DeformableDETR.gen_encoder_output_proposals`` for unpadded images (no memory
    mask, as exported) with the grids as ``arange``: memory (B, S, C) -> the transformed
    memory (B, S, C) and the proposals (B, S, 4) before the sigmoid."""
    if memory_mask is not None:
        raise ValueError(
            'padded batches (a memory mask) are not exported: export one image size per batch'
        )
    bs = memory.size(0)
    proposals = []
    for lvl, (h, w) in enumerate(level_sizes(spatial_shapes)):
        grid_y, grid_x = torch.meshgrid(
            torch.arange(h, dtype=torch.float32, device=memory.device),
            torch.arange(w, dtype=torch.float32, device=memory.device),
            indexing='ij',
        )
        grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
        scale = spatial_shapes[lvl].flip(dims=[0]).view(1, 1, 1, 2)
        grid = (grid.unsqueeze(0).expand(bs, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0**lvl)
        proposals.append(torch.cat((grid, wh), -1).view(bs, -1, 4))
    output_proposals = torch.cat(proposals, 1)
    valid = ((output_proposals > 0.01) & (output_proposals < 0.99)).sum(
        -1, keepdim=True
    ) == output_proposals.shape[-1]
    output_proposals = torch.log(output_proposals / (1 - output_proposals))
    output_proposals = output_proposals.masked_fill(~valid, float('inf'))
    output_memory = memory.masked_fill(~valid, float(0))
    output_memory = self.memory_trans_norm(self.memory_trans_fc(output_memory))
    return output_memory, output_proposals


def pixel_decoder_forward_for_export(self: nn.Module, feats: List[Tensor]):
    """mmdet ``MSDeformAttnPixelDecoder.forward`` with the levels' sizes from the maps'
    shapes (the memory cut by slicing, not ``torch.split`` by sizes read from a tensor):
    feats (B, C_i, H_i, W_i) -> the mask features and the multi-scale features."""
    batch_size = feats[0].shape[0]
    inputs, masks, positions, references, sizes = [], [], [], [], []
    for i in range(self.num_encoder_levels):
        level_idx = self.num_input_levels - i - 1
        feat = feats[level_idx]
        h, w = feat.shape[-2:]
        projected = self.input_convs[i](feat)
        mask = feat.new_zeros((batch_size,) + feat.shape[-2:], dtype=torch.bool)
        position = self.level_encoding.weight[i].view(1, -1, 1, 1) + self.postional_encoding(mask)
        points = self.point_generator.single_level_grid_priors(
            feat.shape[-2:], level_idx, device=feat.device
        )
        feat_wh = level_shapes([(w, h)], feat.device)
        points = points / (feat_wh * self.strides[level_idx])
        inputs.append(projected.flatten(2).permute(0, 2, 1))
        masks.append(mask.flatten(1))
        positions.append(position.flatten(2).permute(0, 2, 1))
        references.append(points)
        sizes.append((h, w))
    spatial_shapes = level_shapes(sizes, feats[0].device)
    level_start_index = torch.cat(
        (spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1])
    )
    reference_points = torch.cat(references, dim=0)[None, :, None].repeat(
        batch_size, 1, self.num_encoder_levels, 1
    )
    memory = self.encoder(
        query=torch.cat(inputs, dim=1),
        query_pos=torch.cat(positions, dim=1),
        key_padding_mask=torch.cat(masks, dim=1),
        spatial_shapes=spatial_shapes,
        reference_points=reference_points,
        level_start_index=level_start_index,
        valid_ratios=reference_points.new_ones((batch_size, self.num_encoder_levels, 2)),
    ).permute(0, 2, 1)
    outs = []
    start = 0
    for h, w in sizes:  # from low resolution to high resolution
        outs.append(memory[:, :, start : start + h * w].reshape(batch_size, -1, h, w))
        start = start + h * w
    for i in range(self.num_input_levels - self.num_encoder_levels - 1, -1, -1):
        lateral = self.lateral_convs[i](feats[i])
        y = lateral + F.interpolate(
            outs[-1], size=lateral.shape[-2:], mode='bilinear', align_corners=False
        )
        outs.append(self.output_convs[i](y))
    return self.mask_feature(outs[-1]), outs[: self.num_outs]


def pre_transformer_for_export(
    self: nn.Module, mlvl_feats: Sequence[Tensor], batch_data_samples: Optional[list] = None
) -> Tuple[dict, dict]:
    """``DeformableDETR.pre_transformer`` for a batch of one image size (no padding masks,
    the path mmdet takes for such a batch and under ONNX export), with ``spatial_shapes``
    built from the maps' traced sizes and carrying them (:func:`with_level_sizes`)."""
    for sample in batch_data_samples or []:
        if tuple(sample.img_shape[:2]) != tuple(sample.batch_input_shape[:2]):
            raise ValueError(
                'padded batches (img_shape smaller than batch_input_shape) are not exported: '
                'export one image size per batch'
            )
    batch_size = mlvl_feats[0].size(0)
    feats, positions, sizes = [], [], []
    for lvl, feat in enumerate(mlvl_feats):
        b, c, h, w = feat.shape
        position = self.positional_encoding(None, input=feat)
        feats.append(feat.view(b, c, -1).permute(0, 2, 1))
        positions.append(
            position.view(b, c, -1).permute(0, 2, 1) + self.level_embed[lvl].view(1, 1, -1)
        )
        sizes.append((h, w))
    spatial_shapes = level_shapes(sizes, mlvl_feats[0].device)
    level_start_index = torch.cat(
        (spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1])
    )
    valid_ratios = mlvl_feats[0].new_ones(batch_size, len(mlvl_feats), 2)
    encoder_inputs = dict(
        feat=torch.cat(feats, 1),
        feat_mask=None,
        feat_pos=torch.cat(positions, 1),
        spatial_shapes=spatial_shapes,
        level_start_index=level_start_index,
        valid_ratios=valid_ratios,
    )
    decoder_inputs = dict(
        memory_mask=None,
        spatial_shapes=spatial_shapes,
        level_start_index=level_start_index,
        valid_ratios=valid_ratios,
    )
    return encoder_inputs, decoder_inputs


@contextlib.contextmanager
def traceable_query_models() -> Iterator[None]:
    """Within the context: mmcv's ``MultiScaleDeformableAttention.forward``, mmdet's
    ``DeformableDETR.pre_transformer`` (the sizes attached) and
    ``gen_encoder_output_proposals``, ``DeformableDetrTransformerEncoder``'s reference
    points and ``MSDeformAttnPixelDecoder.forward`` are the replacements above (the same
    numbers, sizes from the maps' shapes)."""
    from mmcv.ops import MultiScaleDeformableAttention
    from mmdet.models.detectors import DeformableDETR
    from mmdet.models.layers import MSDeformAttnPixelDecoder
    from mmdet.models.layers.transformer import DeformableDetrTransformerEncoder

    patches = [
        (MultiScaleDeformableAttention, 'forward', msda_forward_for_export),
        (DeformableDETR, 'pre_transformer', pre_transformer_for_export),
        (DeformableDETR, 'gen_encoder_output_proposals', encoder_output_proposals_for_export),
        (
            DeformableDetrTransformerEncoder,
            'get_encoder_reference_points',
            staticmethod(encoder_reference_points_for_export),
        ),
        (MSDeformAttnPixelDecoder, 'forward', pixel_decoder_forward_for_export),
    ]
    originals = [(cls, name, cls.__dict__[name]) for cls, name, _ in patches]
    try:
        for cls, name, replacement in patches:
            setattr(cls, name, replacement)
        yield
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


class QueryOutputs(nn.Module):
    """A query-based model as a function of one image batch: :func:`raw_outputs`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        return raw_outputs(self.model, inputs)
