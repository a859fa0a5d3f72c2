"""Export-time replacements for code whose traced graph is wrong, and the names that
mmdeploy's ``FUNCTION_REWRITER`` replaces with them (registered by
:mod:`crossformer_mm.deployment.mmdeploy_rewrites`, which only the deploy configs of
``configs/deploy`` import). Both problems convert without an error and give wrong numbers:

* ``LSDA._sdpa`` -> the explicit attention: mmdeploy's default rewrite of
  ``F.scaled_dot_product_attention`` (``mmdeploy/pytorch/functions/
  multi_head_attention_forward.py``, onedl-mmdeploy 1.5.0) divides the logits by ``scale``
  where torch multiplies, so CrossFormer's logits come out ``d`` times too large.
* mmseg's ``Upsample.forward`` -> interpolation by its scale factor: mmseg computes the
  output size as Python integers, which tracing bakes into the graph, so a dynamic graph
  (Semantic FPN's head) is right only at the traced size. Equal to mmseg's for integer
  scale factors (mmseg's heads use 2).

Export only (:func:`traceable_roi_extraction`, used by :mod:`.two_stage`; mmdeploy has its
own rewrite of it): mmdet's ``SingleRoIExtractor.forward`` pools with mmcv's ``RoIAlign``
(a C++ op neither exporter takes) and picks each RoI's level with ``nonzero`` and
``if inds.numel() > 0`` (data-dependent: TorchScript tracing fixes the traced RoIs' levels
in the graph, ``torch.export`` refuses). The replacement pools every RoI at every level with
``torchvision.ops.roi_align`` (exported as the standard ``RoiAlign``, ``half_pixel``; the
same numbers as mmcv's for ``aligned=True``, average pooling, any ``sampling_ratio``) and
selects each RoI's level with ``torch.where``.
"""

import contextlib
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Type

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lsda_attention_for_export(
    self: nn.Module, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, per_group: bool
) -> Tensor:
    """``LSDA._sdpa`` through the block's explicit reference attention:
    (B, nG, heads, N, d) -> (B, nG, heads, N, d)."""
    return self._explicit_attention(q, k, v, mask)


def upsample_forward_for_export(self: nn.Module, x: Tensor) -> Tensor:
    """mmseg's ``Upsample.forward`` with a traceable size: (B, C, H, W) ->
    (B, C, H * s, W * s), or the module's fixed ``size``."""
    if self.size:
        return F.interpolate(x, self.size, None, self.mode, self.align_corners)
    return F.interpolate(x, None, self.scale_factor, self.mode, self.align_corners)


def exact_for_export(module: nn.Module) -> bool:
    """Whether :func:`upsample_forward_for_export` gives mmseg ``Upsample`` ``module``'s
    numbers: a fixed size, or integer scale factors."""
    if module.size:
        return True
    factors = module.scale_factor
    factors = factors if isinstance(factors, tuple) else (factors,)
    return all(float(f).is_integer() for f in factors)


def mmseg_upsample() -> Optional[Type[nn.Module]]:
    """mmseg's ``Upsample`` class, or None without mmseg."""
    try:
        from mmseg.models.utils.wrappers import Upsample
    except ImportError:
        return None
    return Upsample


@contextlib.contextmanager
def traceable_upsampling() -> Iterator[None]:
    """Within the context, mmseg's ``Upsample.forward`` is
    :func:`upsample_forward_for_export` (nothing changes without mmseg)."""
    Upsample = mmseg_upsample()
    if Upsample is None:
        yield
        return
    original = Upsample.forward
    Upsample.forward = upsample_forward_for_export
    try:
        yield
    finally:
        Upsample.forward = original


def roi_extractor_forward_for_export(
    self: nn.Module,
    feats: Sequence[Tensor],
    rois: Tensor,
    roi_scale_factor: Optional[float] = None,
) -> Tensor:
    """mmdet's ``SingleRoIExtractor.forward`` without data-dependent control flow: levels
    (B, C, H_l, W_l), RoIs (N, 5) ``[batch index, x1, y1, x2, y2]`` -> (N, C, h, w), every
    RoI pooled at every level by ``torchvision.ops.roi_align`` and its own level (mmdet's
    ``map_roi_levels``) selected: the same numbers as mmdet's (see
    :func:`roi_extraction_not_exportable`)."""
    from torchvision.ops import roi_align

    rois = rois.type_as(feats[0])
    num_levels = len(feats)

    def pool(level: int, boxes: Tensor) -> Tensor:
        layer = self.roi_layers[level]
        return roi_align(
            feats[level],
            boxes,
            layer.output_size,
            layer.spatial_scale,
            layer.sampling_ratio,
            layer.aligned,
        )

    if num_levels == 1:  # as mmdet: one level, no rescaling
        return pool(0, rois)
    levels = self.map_roi_levels(rois, num_levels)
    if roi_scale_factor is not None:
        rois = self.roi_rescale(rois, roi_scale_factor)
    out = pool(0, rois)
    for level in range(1, num_levels):
        out = torch.where((levels == level)[:, None, None, None], pool(level, rois), out)
    return out


def single_roi_extractor() -> Optional[Type[nn.Module]]:
    """mmdet's ``SingleRoIExtractor`` class, or None without mmdet."""
    try:
        from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    except ImportError:
        return None
    return SingleRoIExtractor


def roi_extraction_not_exportable(model: nn.Module) -> List[str]:
    """Names of the RoI extractors of ``model`` that :func:`traceable_roi_extraction` cannot
    export with mmdet's numbers: other extractors than ``SingleRoIExtractor``, or RoI layers
    other than mmcv's ``RoIAlign`` with average pooling."""
    from mmcv.ops import RoIAlign

    extractor = single_roi_extractor()
    names = []
    for name, module in model.named_modules():
        if not type(module).__name__.endswith('RoIExtractor'):
            continue
        layers = getattr(module, 'roi_layers', [])
        if (
            extractor is None
            or not isinstance(module, extractor)
            or not all(isinstance(layer, RoIAlign) and layer.pool_mode == 'avg' for layer in layers)
        ):
            names.append(name)
    return names


@contextlib.contextmanager
def traceable_roi_extraction() -> Iterator[None]:
    """Within the context, mmdet's ``SingleRoIExtractor.forward`` is
    :func:`roi_extractor_forward_for_export` (nothing changes without mmdet)."""
    extractor = single_roi_extractor()
    if extractor is None:
        yield
        return
    original = extractor.forward
    extractor.forward = roi_extractor_forward_for_export
    try:
        yield
    finally:
        extractor.forward = original


#: mmdeploy's ``func_name`` of each replaced function -> its replacement.
MMDEPLOY_REWRITES: Dict[str, Callable] = {
    'crossformer_mm.models.layers.lsda.LSDA._sdpa': lsda_attention_for_export,
    'mmseg.models.utils.wrappers.Upsample.forward': upsample_forward_for_export,
}
