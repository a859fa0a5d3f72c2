# Re-implements the training mask (lib/dataset/COCOKeypoints.py) and the aligned test resize
# (lib/utils/transforms.py) of HigherHRNet (Cheng et al., CVPR 2020,
# https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, Copyright (c) Microsoft, MIT License).
"""Transforms of HigherHRNet: the training mask of invalid regions (crowds
included), the original aligned (multi-scale) test resize and a pack step
that keeps an image pyramid."""

from typing import Dict, Sequence, Tuple

import cv2
import numpy as np
import xtcocotools.mask as cocomask
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from mmpose.datasets.transforms import BottomupGetHeatmapMask, PackPoseInputs
from mmpose.datasets.transforms.formatting import image_to_tensor
from mmpose.structures.bbox import get_warp_matrix


@TRANSFORMS.register_module()
class BottomupGetHeatmapMaskWithCrowd(BottomupGetHeatmapMask):
    """``BottomupGetHeatmapMask`` that also masks crowd regions.

    mmpose 1.3.2 turns only polygon segmentations of ``invalid_segs`` into
    the mask and silently skips RLE ones, which is how COCO stores crowd
    regions (``iscrowd=1``), so crowds stayed supervised as background. The
    original masks both crowds and people without labelled keypoints; here
    polygons, uncompressed RLE (``counts`` list) and compressed RLE all count.
    Everything else (warp, flip, resize to every heatmap size, 0.5 threshold)
    is the parent's.
    """

    def _segs_to_mask(self, segs: list, img_shape: Tuple[int, int]) -> np.ndarray:
        """(h, w) uint8 union of the segmentations (1 = invalid object)."""
        height, width = img_shape
        rles = []
        for seg in segs:
            if isinstance(seg, dict) and isinstance(seg.get('counts'), list):
                rles.append(cocomask.frPyObjects(seg, height, width))
            elif isinstance(seg, dict):
                rles.append(seg)
            elif isinstance(seg, (list, tuple)) and seg:
                rles.extend(cocomask.frPyObjects(seg, height, width))
        if not rles:
            return np.zeros((height, width), dtype=np.uint8)
        return cocomask.decode(cocomask.merge(rles))


@TRANSFORMS.register_module()
class ResizeAlignMultiScale(BaseTransform):
    """Resize the short side to ``input_size`` (x scale), long side rounded up
    to the size grid, aspect kept: the original ``resize_align_multi_scale``.

    Sizes are computed on the grid of the smallest scale (so that all scales
    are exact multiples of it) and the image centre is rounded to integer
    pixels, both as in the original. With one scale, ``img`` is one image;
    with several, ``img`` is ``[main (x1.0), *others]`` and ``aug_scales``
    lists the others (the order ``BottomupPoseEstimator`` expects).

    Added keys: ``img_shape`` / ``input_size`` (main-scale (h, w) / (w, h)),
    ``input_center``, ``input_scale`` (the image region, in pixels, that maps
    onto the main-scale input), ``aug_scales`` (with several scales).

    Args:
        input_size (int): Short-side size at scale 1 (512 or 640).
        scale_factors (Sequence[float]): Test scales; must contain 1.0.
            Defaults to (1.0, ).
        size_divisor (int): Size grid. Defaults to 64.
    """

    def __init__(
        self, input_size: int, scale_factors: Sequence[float] = (1.0,), size_divisor: int = 64
    ) -> None:
        if 1.0 not in scale_factors:
            raise ValueError(
                'scale_factors must contain 1.0 (the scale whose '
                f'tags are used), got {list(scale_factors)}'
            )
        if not isinstance(input_size, int):
            raise TypeError(f'input_size is the short-side length (an int), got {input_size!r}')
        super().__init__()
        self.input_size = input_size
        self.scale_factors = [float(s) for s in scale_factors]
        self.size_divisor = size_divisor

    def _round_up(self, size: float) -> int:
        return int((size + self.size_divisor - 1) // self.size_divisor * self.size_divisor)

    def multi_scale_size(
        self, img_w: int, img_h: int, scale: float
    ) -> Tuple[Tuple[int, int], np.ndarray]:
        """The original ``get_multi_scale_size``: the resized (w, h) and the
        (w, h) of the image region it shows, in pixels."""
        min_scale = min(self.scale_factors)
        min_size = self._round_up(min_scale * self.input_size)
        if img_w < img_h:
            resized_w = int(min_size * scale / min_scale)
            resized_h = int(self._round_up(min_size / img_w * img_h) * scale / min_scale)
            region = np.array([img_w, resized_h / resized_w * img_w])
        else:
            resized_h = int(min_size * scale / min_scale)
            resized_w = int(self._round_up(min_size / img_h * img_w) * scale / min_scale)
            region = np.array([resized_w / resized_h * img_h, img_h])
        return (resized_w, resized_h), region.astype(np.float32)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        img_h, img_w = img.shape[:2]
        center = np.array([int(img_w / 2.0 + 0.5), int(img_h / 2.0 + 0.5)], dtype=np.float32)
        others = [s for s in self.scale_factors if s != 1.0]
        imgs = []
        for scale in [1.0, *others]:
            size, region = self.multi_scale_size(img_w, img_h, scale)
            warp_mat = get_warp_matrix(center, region, 0, size)
            imgs.append(cv2.warpAffine(img, warp_mat, size, flags=cv2.INTER_LINEAR))
            if scale == 1.0:
                results['input_size'] = size
                results['img_shape'] = size[::-1]
                results['input_center'] = center
                results['input_scale'] = region
        if others:
            results['img'] = imgs
            results['aug_scales'] = others
        else:
            results['img'] = imgs[0]
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(input_size={self.input_size}, '
            f'scale_factors={self.scale_factors}, '
            f'size_divisor={self.size_divisor})'
        )


@TRANSFORMS.register_module()
class PackMultiScalePoseInputs(PackPoseInputs):
    """``PackPoseInputs`` that also packs an image pyramid.

    A list of images of different sizes (from :class:`ResizeAlignMultiScale`)
    becomes a list of (C, H, W) tensors, which
    :class:`MultiScalePoseDataPreprocessor` batches per scale;
    ``aug_scales`` is kept in the meta information. A single image is packed
    as by ``PackPoseInputs``. The default meta keys leave out
    ``category_id``: a bottom-up sample holds the ids of all its people, and
    ``CocoMetric`` would copy that list into every result.
    """

    def __init__(
        self,
        meta_keys: Sequence[str] = (
            'id',
            'img_id',
            'img_path',
            'crowd_index',
            'ori_shape',
            'img_shape',
            'input_size',
            'input_center',
            'input_scale',
            'flip',
            'flip_direction',
            'flip_indices',
            'raw_ann_info',
            'dataset_name',
            'aug_scales',
        ),
        pack_transformed: bool = False,
    ) -> None:
        super().__init__(meta_keys=meta_keys, pack_transformed=pack_transformed)

    def transform(self, results: Dict) -> Dict:
        imgs = results['img']
        if not isinstance(imgs, list):
            return super().transform(results)
        packed = super().transform({**results, 'img': imgs[0]})
        packed['inputs'] = [image_to_tensor(img) for img in imgs]
        return packed
