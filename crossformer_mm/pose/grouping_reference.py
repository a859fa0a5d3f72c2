# Follows adjust / refine of lib/core/group.py of HigherHRNet (Cheng et al., CVPR 2020,
# https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation,
# Copyright (c) Microsoft, MIT License), itself based on pose-ae-train
# (Newell et al., https://github.com/princeton-vl/pose-ae-train, BSD 3-Clause License).
"""The original HigherHRNet ``HeatmapParser.adjust`` / ``refine``, written as
the original computes them (one Python iteration per person and joint): the
reference that the vectorised :class:`~crossformer_mm.pose.grouping.HeatmapParser`
is checked against (tests) and timed against (``tools/analysis/benchmark_decode.py``).
"""

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .codec import COCO_KEYPOINT_ORDER
from .grouping import HeatmapParser


def loop_adjust(grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """The original ``adjust``: one iteration per person and joint."""
    for person in grouped:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                x, y = joint[0:2]
                xx, yy = int(x), int(y)
                tmp = heatmaps[joint_id]
                if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)]:
                    x += 0.25
                else:
                    x -= 0.25
                if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx]:
                    y += 0.25
                else:
                    y -= 0.25
                person[joint_id, 0:2] = (x + 0.5, y + 0.5)
    return grouped


def loop_refine(heatmaps: np.ndarray, tags: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The original ``refine`` of one person: one iteration per joint."""
    detected_tags = []
    for i in range(keypoints.shape[0]):
        if keypoints[i, 2] > 0:
            x, y = keypoints[i][:2].astype(np.int32)
            detected_tags.append(tags[i, y, x])
    prev_tag = np.mean(detected_tags, axis=0)
    found = []
    for i in range(keypoints.shape[0]):
        tmp = heatmaps[i, :, :]
        tt = ((tags[i, :, :] - prev_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5
        tmp2 = tmp - np.round(tt)
        y, x = np.unravel_index(np.argmax(tmp2), tmp.shape)
        xx, yy = x, y
        val = tmp[y, x]
        x = x + 0.5
        y = y + 0.5
        if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)]:
            x += 0.25
        else:
            x -= 0.25
        if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx]:
            y += 0.25
        else:
            y -= 0.25
        found.append((x, y, val))
    found = np.array(found)
    for i in range(heatmaps.shape[0]):
        if found[i, 2] > 0 and keypoints[i, 2] == 0:
            keypoints[i, :2] = found[i, :2]
            keypoints[i, 2] = found[i, 2]
    return keypoints


def loop_parse(
    parser: HeatmapParser, heatmaps: torch.Tensor, tags: torch.Tensor
) -> Tuple[np.ndarray, np.ndarray]:
    """``HeatmapParser.parse`` as the original computes it: NMS with a 2D
    max-pool, loop ``adjust`` and ``refine``."""
    kernel = parser.nms_kernel
    window_max = F.max_pool2d(heatmaps, kernel, 1, (kernel - 1) // 2)
    peaks = heatmaps * torch.eq(window_max, heatmaps).float()
    grouped = parser.match(*parser.top_k_peaks(peaks, tags))
    heatmaps_np, tags_np = heatmaps.numpy(), tags.numpy()
    grouped = loop_adjust(grouped, heatmaps_np)
    scores = np.array([person[:, 2].mean() for person in grouped])
    for person in grouped:
        loop_refine(heatmaps_np, tags_np, person)
    return grouped, scores


def remove_joints(
    heatmaps: np.ndarray, gt_xy: np.ndarray, per_person: int, radius: int = 8
) -> np.ndarray:
    """Zero the heatmap around the first ``per_person`` joints (in grouping
    order) of every person, so that grouping misses them."""
    heatmaps = heatmaps.copy()
    height, width = heatmaps.shape[1:]
    for person in gt_xy:
        for joint in COCO_KEYPOINT_ORDER[1 : per_person + 1]:
            x, y = np.round(person[joint]).astype(int)
            heatmaps[
                joint,
                max(0, y - radius) : min(height, y + radius + 1),
                max(0, x - radius) : min(width, x + radius + 1),
            ] = 0
    return heatmaps
