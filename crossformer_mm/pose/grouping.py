# Re-implements the associative-embedding grouping (lib/core/group.py) of HigherHRNet
# (Cheng et al., CVPR 2020, https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation,
# Copyright (c) Microsoft, MIT License), itself based on pose-ae-train
# (Newell et al., https://github.com/princeton-vl/pose-ae-train, BSD 3-Clause License).
"""Associative-embedding grouping of HigherHRNet (original ``HeatmapParser``).

A faithful re-implementation of ``lib/core/group.py`` of the original code
(HRNet/HigherHRNet-Human-Pose-Estimation): 5x5 max-pool NMS, top-k candidates
per joint, greedy joint-by-joint Hungarian matching of candidates to the first
``max_num_people`` groups (munkres 1.1.4 breaks ties as the original did), the
+-0.25 px "adjust" step, person scores taken before "refine", and "refine",
which fills missing joints from the tag-penalised heatmap maximum.

The per-joint/per-person Python loops of ``adjust`` and ``refine`` are
vectorised with NumPy; the element-wise arithmetic, dtypes and tie-breaking
(``argmax`` takes the first maximum) are the original's.

Shapes: K joints, H x W maps, L tag dimensions (2 with flip test),
M = ``max_num_people`` candidates per joint, P grouped people.
"""

from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from munkres import Munkres
from torch import Tensor


def heatmap_nms(heatmaps: Tensor, kernel: int) -> Tensor:
    """Keep only the local maxima of ``kernel`` x ``kernel`` windows.

    Equal to the original ``heatmaps * (MaxPool2d(kernel, 1, kernel // 2)
    (heatmaps) == heatmaps)``; the window maximum is taken separably (rows,
    then columns), which gives the same values several times faster on CPU.

    Args:
        heatmaps (Tensor): (B, K, H, W).
        kernel (int): Odd window size (5 in the original).

    Returns:
        Tensor: (B, K, H, W) with every non-maximum set to 0.
    """
    radius = kernel // 2
    height, width = heatmaps.shape[2:]
    padded = F.pad(heatmaps, (radius, radius, 0, 0), value=float('-inf'))
    row_max = padded[..., :width]
    for shift in range(1, kernel):
        row_max = torch.maximum(row_max, padded[..., shift : shift + width])
    padded = F.pad(row_max, (0, 0, radius, radius), value=float('-inf'))
    window_max = padded[..., :height, :]
    for shift in range(1, kernel):
        window_max = torch.maximum(window_max, padded[..., shift : shift + height, :])
    return heatmaps * torch.eq(window_max, heatmaps).float()


def hungarian_match(costs: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment of rows to columns with munkres.

    Args:
        costs (np.ndarray): (R, C) cost matrix with R <= C.

    Returns:
        np.ndarray: (R, 2) int array of (row, column) pairs.
    """
    return np.array(Munkres().compute(costs)).astype(np.int32)


class HeatmapParser:
    """Groups heatmap peaks into people by their associative-embedding tags.

    Args:
        keypoint_order (Sequence[int]): The joint order of the greedy
            matching (COCO: head and torso first, then the limbs).
        nms_kernel (int): Max-pool NMS window. Defaults to 5.
        max_num_people (int): Candidates per joint, and the number of
            existing groups a candidate can be matched to. Defaults to 30.
        detection_threshold (float): Candidates with a heatmap value not
            above it are dropped. Defaults to 0.1.
        tag_threshold (float): A candidate joins a group only if its tag
            distance to the group's mean tag is below it. Defaults to 1.0.
        use_detection_val (bool): Matching cost
            ``round(distance) * 100 - value`` (True, the original's setting)
            or the raw distance. Defaults to True.
        ignore_too_much (bool): Stop adding joints once ``max_num_people``
            groups exist. Defaults to False (the original's setting).
    """

    def __init__(
        self,
        keypoint_order: Sequence[int],
        nms_kernel: int = 5,
        max_num_people: int = 30,
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        use_detection_val: bool = True,
        ignore_too_much: bool = False,
    ) -> None:
        if nms_kernel % 2 != 1:
            raise ValueError(f'nms_kernel must be odd, got {nms_kernel}')
        self.keypoint_order = list(keypoint_order)
        if sorted(self.keypoint_order) != list(range(len(keypoint_order))):
            raise ValueError(
                f'keypoint_order must be a permutation of 0..K-1, got {self.keypoint_order}'
            )
        self.nms_kernel = nms_kernel
        self.max_num_people = max_num_people
        self.detection_threshold = detection_threshold
        self.tag_threshold = tag_threshold
        self.use_detection_val = use_detection_val
        self.ignore_too_much = ignore_too_much

    def top_k(self, heatmaps: Tensor, tags: Tensor) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``max_num_people`` strongest NMS peaks of every joint.

        Args:
            heatmaps (Tensor): (K, H, W).
            tags (Tensor): (K, H, W, L).

        Returns:
            tuple: values (K, M) float32, locations (K, M, 2) int64 as
            (x, y), tags (K, M, L) float32.
        """
        peaks = heatmap_nms(heatmaps[None], self.nms_kernel)[0]
        return self.top_k_peaks(peaks, tags)

    def top_k_peaks(self, peaks: Tensor, tags: Tensor) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`top_k` of heatmaps that already went through NMS."""
        num_joints, height, width = peaks.shape
        vals, inds = peaks.view(1, num_joints, -1).topk(self.max_num_people, dim=2)
        flat_tags = tags[None].reshape(1, num_joints, height * width, -1)
        topk_tags = torch.stack(
            [torch.gather(flat_tags[..., i], 2, inds) for i in range(flat_tags.shape[3])], dim=3
        )
        locs = torch.stack((inds % width, inds // width), dim=3)
        return vals[0].numpy(), locs[0].numpy(), topk_tags[0].numpy()

    def match(self, vals: np.ndarray, locs: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """Group the candidates joint by joint (the original
        ``match_by_tag``, including its tag-keyed group dictionary).

        Args:
            vals (np.ndarray): (K, M) candidate heatmap values.
            locs (np.ndarray): (K, M, 2) candidate (x, y).
            tags (np.ndarray): (K, M, L) candidate tags.

        Returns:
            np.ndarray: (P, K, 3 + L) float32 rows (x, y, value, tag...);
            missing joints are all-zero rows.
        """
        num_joints = vals.shape[0]
        if num_joints != len(self.keypoint_order):
            raise ValueError(
                f'the maps have {num_joints} joints but keypoint_order has '
                f'{len(self.keypoint_order)}; set decode_keypoint_order for '
                'this dataset'
            )
        default = np.zeros((num_joints, 3 + tags.shape[2]))
        joint_dict = {}
        tag_dict = {}
        for i, idx in enumerate(self.keypoint_order):
            joints = np.concatenate((locs[idx], vals[idx, :, None], tags[idx]), 1)
            keep = joints[:, 2] > self.detection_threshold
            joint_tags = tags[idx][keep]
            joints = joints[keep]
            if joints.shape[0] == 0:
                continue

            if i == 0 or len(joint_dict) == 0:
                for tag, joint in zip(joint_tags, joints):
                    key = tag[0]
                    joint_dict.setdefault(key, np.copy(default))[idx] = joint
                    tag_dict[key] = [tag]
                continue

            grouped_keys = list(joint_dict.keys())[: self.max_num_people]
            grouped_tags = [np.mean(tag_dict[k], axis=0) for k in grouped_keys]
            if self.ignore_too_much and len(grouped_keys) == self.max_num_people:
                continue

            diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
            dist = np.linalg.norm(diff, ord=2, axis=2)
            costs = np.copy(dist)
            if self.use_detection_val:
                costs = np.round(costs) * 100 - joints[:, 2:3]
            num_added, num_grouped = dist.shape
            if num_added > num_grouped:
                costs = np.concatenate(
                    (costs, np.zeros((num_added, num_added - num_grouped)) + 1e10), axis=1
                )

            for row, col in hungarian_match(costs):
                if row < num_added and col < num_grouped and dist[row][col] < self.tag_threshold:
                    key = grouped_keys[col]
                    joint_dict[key][idx] = joints[row]
                    tag_dict[key].append(joint_tags[row])
                else:
                    key = joint_tags[row][0]
                    joint_dict.setdefault(key, np.copy(default))[idx] = joints[row]
                    tag_dict[key] = [joint_tags[row]]

        if not joint_dict:
            return np.zeros((0, num_joints, 3 + tags.shape[2]), dtype=np.float32)
        return np.array([joint_dict[k] for k in joint_dict]).astype(np.float32)

    @staticmethod
    def _quarter_offsets(
        heatmaps: np.ndarray, joint_ids: np.ndarray, xs: np.ndarray, ys: np.ndarray
    ) -> Tuple:
        """+-0.25 toward the larger horizontal / vertical neighbour (ties and
        smaller -> -0.25) at integer positions, border-clamped."""
        _, height, width = heatmaps.shape
        right = heatmaps[joint_ids, ys, np.minimum(xs + 1, width - 1)]
        left = heatmaps[joint_ids, ys, np.maximum(xs - 1, 0)]
        down = heatmaps[joint_ids, np.minimum(ys + 1, height - 1), xs]
        up = heatmaps[joint_ids, np.maximum(ys - 1, 0), xs]
        return (np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25))

    def adjust(self, grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
        """Sub-pixel shift of every detected joint (in place).

        Args:
            grouped (np.ndarray): (P, K, 3 + L) from :meth:`match`.
            heatmaps (np.ndarray): (K, H, W) float32.

        Returns:
            np.ndarray: ``grouped`` with x, y of detected joints set to
            ``pos +- 0.25 + 0.5``.
        """
        people, joint_ids = np.nonzero(grouped[..., 2] > 0)
        xs = grouped[people, joint_ids, 0]
        ys = grouped[people, joint_ids, 1]
        dx, dy = self._quarter_offsets(heatmaps, joint_ids, xs.astype(int), ys.astype(int))
        grouped[people, joint_ids, 0] = xs + dx + 0.5
        grouped[people, joint_ids, 1] = ys + dy + 0.5
        return grouped

    def refine(self, person: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """Fill the missing joints of one person (in place).

        A missing joint goes to the argmax of ``heatmap - round(||tag -
        person mean tag||)`` if the heatmap value there is positive.

        Args:
            person (np.ndarray): (K, 3 + L) one person of ``grouped``.
            heatmaps (np.ndarray): (K, H, W) float32.
            tags (np.ndarray): (K, H, W, L) float32.

        Returns:
            np.ndarray: ``person`` with missing joints filled.
        """
        detected = np.nonzero(person[:, 2] > 0)[0]
        xy = person[detected, :2].astype(np.int32)
        mean_tag = np.mean(tags[detected, xy[:, 1], xy[:, 0]], axis=0)

        missing = np.nonzero(person[:, 2] == 0)[0]
        if missing.size == 0:
            return person
        num_joints, height, width = heatmaps.shape
        dist = ((tags[missing] - mean_tag[None, None, None, :]) ** 2).sum(axis=3) ** 0.5
        scores = heatmaps[missing] - np.round(dist)
        flat = np.argmax(scores.reshape(len(missing), -1), axis=1)
        ys, xs = np.unravel_index(flat, (height, width))
        vals = heatmaps[missing, ys, xs]
        dx, dy = self._quarter_offsets(heatmaps, missing, xs, ys)
        fill = vals > 0
        person[missing[fill], 0] = (xs + 0.5 + dx)[fill]
        person[missing[fill], 1] = (ys + 0.5 + dy)[fill]
        person[missing[fill], 2] = vals[fill]
        return person

    def parse(
        self, heatmaps: Tensor, tags: Tensor, adjust: bool = True, refine: bool = True
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Group one image's maps into people.

        Args:
            heatmaps (Tensor): (K, H, W) aggregated heatmaps.
            tags (Tensor): (K, H, W, L) tag maps.
            adjust (bool): Apply the +-0.25 sub-pixel shift. Defaults to True.
            refine (bool): Fill missing joints. Defaults to True.

        Returns:
            tuple: grouped (P, K, 3 + L) float32 rows (x, y, value, tag...)
            in heatmap pixels, and person scores (P,) float32: the mean of
            the K values before refinement.
        """
        if heatmaps.dim() != 3 or tags.dim() != 4 or tags.shape[:3] != heatmaps.shape:
            raise ValueError(
                'expected heatmaps (K, H, W) and tags '
                f'(K, H, W, L), got {tuple(heatmaps.shape)} and '
                f'{tuple(tags.shape)}'
            )
        heatmaps = heatmaps.detach().float().cpu()
        tags = tags.detach().float().cpu()
        grouped = self.match(*self.top_k(heatmaps, tags))
        heatmaps_np = heatmaps.numpy()
        if adjust:
            grouped = self.adjust(grouped, heatmaps_np)
        scores = grouped[:, :, 2].mean(axis=1)
        if refine:
            tags_np = tags.numpy()
            for person in grouped:
                self.refine(person, heatmaps_np, tags_np)
        return grouped, scores
