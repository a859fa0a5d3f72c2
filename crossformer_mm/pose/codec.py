# Re-implements the target generators (lib/dataset/target_generators/) and the grouping of
# HigherHRNet (Cheng et al., CVPR 2020, https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation,
# Copyright (c) Microsoft, MIT License).
"""Two-resolution associative-embedding codec of HigherHRNet."""

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS
from torch import Tensor

from .grouping import HeatmapParser

#: The grouping order of the original (head and torso first, then the limbs).
COCO_KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
#: The original groups every dataset in the first ``num_joints`` entries of
#: its COCO order (``lib/core/group.py``: ``joint_order[i] for i in
#: range(num_joints)``); for CrowdPose's 14 joints that is this permutation,
#: with which the released CrowdPose models were tested.
CROWDPOSE_KEYPOINT_ORDER = COCO_KEYPOINT_ORDER[:14]


@KEYPOINT_CODECS.register_module()
class HigherResolutionAssociativeEmbedding(BaseKeypointCodec):
    """Targets and grouping of HigherHRNet (CVPR 2020).

    Encoding follows the original ``HeatmapGenerator`` / ``JointsGenerator``:
    for every output stride (4 and 2), a Gaussian of ``sigma`` on a
    ``(6 * sigma + 3)``-pixel window is placed at the integer part of each
    visible joint (``int()``, i.e. floored for the non-negative positions that
    are kept); joints whose integer position falls outside the map are skipped,
    with no partial Gaussians; people are combined by a pixel-wise maximum.
    The tag targets index the first (stride-4) map.

    Decoding is the original ``HeatmapParser`` (see
    :class:`~crossformer_mm.pose.grouping.HeatmapParser`) on maps that
    the head has already aggregated; keypoints come back in the pixel frame of
    those maps.

    Encoded (``input_size`` = (w, h) comes from the pipeline, e.g.
    ``BottomupRandomAffine``):

        - heatmaps (List[np.ndarray]): per stride s, (K, h // s, w // s).
        - keypoint_indices (np.ndarray): (N, K, 2) int64 rows
          ``[y * W + x, valid]`` at the first stride (W = w // strides[0]).

    ``field_mapping_table`` / ``label_mapping_table`` make ``PackPoseInputs``
    keep ``heatmaps``, ``heatmap_mask`` (from ``BottomupGetHeatmapMask``) and
    ``keypoint_indices``.

    Args:
        heatmap_strides (Sequence[int]): Output strides. Defaults to (4, 2).
        sigma (float): Gaussian sigma at every stride. Defaults to 2.
        decode_keypoint_order (Sequence[int]): Grouping order of the joints.
            Defaults to the COCO order of the original.
        decode_nms_kernel (int): Defaults to 5.
        decode_max_num_people (int): Defaults to 30.
        decode_keypoint_thr (float): Defaults to 0.1.
        decode_tag_thr (float): Defaults to 1.0.
        decode_adjust (bool): Defaults to True.
        decode_refine (bool): Defaults to True.
    """

    auxiliary_encode_keys = {'input_size'}
    field_mapping_table = dict(heatmaps='heatmaps', heatmap_mask='heatmap_mask')
    label_mapping_table = dict(keypoint_indices='keypoint_indices')

    def __init__(
        self,
        heatmap_strides: Sequence[int] = (4, 2),
        sigma: float = 2.0,
        decode_keypoint_order: Sequence[int] = COCO_KEYPOINT_ORDER,
        decode_nms_kernel: int = 5,
        decode_max_num_people: int = 30,
        decode_keypoint_thr: float = 0.1,
        decode_tag_thr: float = 1.0,
        decode_adjust: bool = True,
        decode_refine: bool = True,
    ) -> None:
        super().__init__()
        self.heatmap_strides = tuple(heatmap_strides)
        self.sigma = sigma
        size = 6 * sigma + 3
        grid = np.arange(0, size, 1, float)
        center = 3 * sigma + 1
        self.gaussian = np.exp(
            -((grid[None, :] - center) ** 2 + (grid[:, None] - center) ** 2) / (2 * sigma**2)
        )
        self.parser = HeatmapParser(
            keypoint_order=decode_keypoint_order,
            nms_kernel=decode_nms_kernel,
            max_num_people=decode_max_num_people,
            detection_threshold=decode_keypoint_thr,
            tag_threshold=decode_tag_thr,
        )
        self.decode_adjust = decode_adjust
        self.decode_refine = decode_refine

    def heatmap_sizes(self, input_size: Tuple[int, int]) -> List[tuple]:
        """(W, H) of every output for an input of ``input_size`` (w, h)."""
        for stride in self.heatmap_strides:
            if input_size[0] % stride or input_size[1] % stride:
                raise ValueError(
                    f'input size {tuple(input_size)} is not divisible by the '
                    f'heatmap stride {stride}; use a multiple of '
                    f'{max(self.heatmap_strides)}'
                )
        return [(input_size[0] // s, input_size[1] // s) for s in self.heatmap_strides]

    def encode(
        self,
        keypoints: np.ndarray,
        keypoints_visible: Optional[np.ndarray] = None,
        input_size: Optional[Tuple[int, int]] = None,
    ) -> dict:
        """Heatmaps at every stride and the stride-4 tag indices.

        Args:
            keypoints (np.ndarray): (N, K, 2) in input-image pixels.
            keypoints_visible (np.ndarray, optional): (N, K); > 0 = labelled.
            input_size (tuple): (w, h) of the network input.

        Returns:
            dict: ``heatmaps`` and ``keypoint_indices`` (see class doc).
        """
        if input_size is None:
            raise ValueError(
                f'{type(self).__name__} needs results["input_size"]: put '
                'BottomupRandomAffine (or another transform that sets it) '
                'before GenerateTarget in the pipeline'
            )
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], dtype=np.float32)
        sizes = self.heatmap_sizes(input_size)
        heatmaps = [
            self._gaussian_heatmaps(keypoints / s, keypoints_visible, size)
            for s, size in zip(self.heatmap_strides, sizes)
        ]
        keypoint_indices = self._tag_indices(
            keypoints / self.heatmap_strides[0], keypoints_visible, sizes[0]
        )
        return dict(heatmaps=heatmaps, keypoint_indices=keypoint_indices)

    def _gaussian_heatmaps(
        self, keypoints: np.ndarray, keypoints_visible: np.ndarray, size: Tuple[int, int]
    ) -> np.ndarray:
        """(K, H, W) max-combined Gaussians of keypoints in map pixels."""
        width, height = size
        num_keypoints = keypoints.shape[1]
        heatmaps = np.zeros((num_keypoints, height, width), dtype=np.float32)
        reach = 3 * self.sigma + 1
        for n, k in zip(*np.nonzero(keypoints_visible > 0)):
            x, y = int(keypoints[n, k, 0]), int(keypoints[n, k, 1])
            if x < 0 or y < 0 or x >= width or y >= height:
                continue
            x0, y0 = int(np.round(x - reach)), int(np.round(y - reach))
            x1, y1 = int(np.round(x + reach + 1)), int(np.round(y + reach + 1))
            gx0, gx1 = max(0, -x0), min(x1, width) - x0
            gy0, gy1 = max(0, -y0), min(y1, height) - y0
            hx0, hx1 = max(0, x0), min(x1, width)
            hy0, hy1 = max(0, y0), min(y1, height)
            heatmaps[k, hy0:hy1, hx0:hx1] = np.maximum(
                heatmaps[k, hy0:hy1, hx0:hx1], self.gaussian[gy0:gy1, gx0:gx1]
            )
        return heatmaps

    @staticmethod
    def _tag_indices(
        keypoints: np.ndarray, keypoints_visible: np.ndarray, size: Tuple[int, int]
    ) -> np.ndarray:
        """(N, K, 2) int64 ``[y * W + x, valid]`` of keypoints in map
        pixels."""
        width, height = size
        xy = np.trunc(keypoints).astype(np.int64)
        x, y = xy[..., 0], xy[..., 1]
        valid = (keypoints_visible > 0) & (x >= 0) & (y >= 0) & (x < width) & (y < height)
        indices = np.where(valid, y * width + x, 0)
        return np.stack([indices, valid.astype(np.int64)], axis=-1)

    def decode(self, encoded: Tuple[np.ndarray, np.ndarray]) -> Tuple:
        """Group one image: ``encoded`` = (heatmaps (K, H, W), tags (K, H, W,
        L)). Returns keypoints (P, K, 2), keypoint scores (P, K) and person
        scores (P,)."""
        heatmaps, tags = encoded
        keypoints, scores, person_scores = self.batch_decode(
            torch.as_tensor(heatmaps)[None], torch.as_tensor(tags)[None]
        )
        return keypoints[0], scores[0], person_scores[0]

    def batch_decode(self, batch_heatmaps: Tensor, batch_tags: Tensor) -> Tuple[list, list, list]:
        """Group a batch of aggregated maps.

        Args:
            batch_heatmaps (Tensor): (B, K, H, W).
            batch_tags (Tensor): (B, K, H, W, L).

        Returns:
            tuple: lists over the batch of keypoints (P, K, 2) in map pixels,
            keypoint scores (P, K) and person scores (P,), all float32.
        """
        keypoints, scores, person_scores = [], [], []
        for heatmaps, tags in zip(batch_heatmaps, batch_tags):
            grouped, instance_scores = self.parser.parse(
                heatmaps, tags, self.decode_adjust, self.decode_refine
            )
            keypoints.append(grouped[..., :2])
            scores.append(grouped[..., 2])
            person_scores.append(instance_scores)
        return keypoints, scores, person_scores
