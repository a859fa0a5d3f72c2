"""Time HigherHRNet's grouping decode: vectorised vs. the per-joint loops.

    python tools/analysis/benchmark_decode.py [--fixture NPZ] [--repeat 20]
        [--missing 4]

Runs :class:`~crossformer_mm.models.pose.grouping.HeatmapParser` (vectorised
``adjust`` / ``refine``) and a loop reference written like the original
``HeatmapParser.adjust`` / ``refine`` (one Python iteration per person and
joint) on the recorded fixture maps (17 x 128 x 128, three people), checks
that both give identical results and prints the time of each and their
ratio. ``--missing N`` removes the peaks of N joints per person from the
heatmaps first, so that ``refine`` has joints to fill (the fixture has none
missing), as on real images. ``--upsample F`` enlarges the maps F times
(bilinear), e.g. 4 for the input-size maps that test-time decoding sees at
512 x 512.
"""
import argparse
import os.path as osp
import time
from typing import Callable, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from crossformer_mm.models.pose.codec import COCO_KEYPOINT_ORDER
from crossformer_mm.models.pose.grouping import HeatmapParser

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_FIXTURE = osp.join(
    osp.dirname(REPO_ROOT), 'shared', 'reference', 'fixtures',
    'higherhrnet_decode.npz')


def loop_adjust(grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """The original ``adjust``: one iteration per person and joint."""
    for person in grouped:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                x, y = joint[0:2]
                xx, yy = int(x), int(y)
                tmp = heatmaps[joint_id]
                if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy,
                                                               max(xx - 1, 0)]:
                    x += 0.25
                else:
                    x -= 0.25
                if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1),
                                                               xx]:
                    y += 0.25
                else:
                    y -= 0.25
                person[joint_id, 0:2] = (x + 0.5, y + 0.5)
    return grouped


def loop_refine(heatmaps: np.ndarray, tags: np.ndarray,
                keypoints: np.ndarray) -> np.ndarray:
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
        tt = (((tags[i, :, :] - prev_tag[None, None, :])**2).sum(axis=2)**
              0.5)
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


def loop_parse(parser: HeatmapParser, heatmaps: torch.Tensor,
               tags: torch.Tensor) -> Tuple[np.ndarray, np.ndarray]:
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


def remove_joints(heatmaps: np.ndarray, gt_xy: np.ndarray, per_person: int,
                  radius: int = 8) -> np.ndarray:
    """Zero the heatmap around the first ``per_person`` joints (in grouping
    order) of every person, so that grouping misses them."""
    heatmaps = heatmaps.copy()
    height, width = heatmaps.shape[1:]
    for person in gt_xy:
        for joint in COCO_KEYPOINT_ORDER[1:per_person + 1]:
            x, y = np.round(person[joint]).astype(int)
            heatmaps[joint,
                     max(0, y - radius):min(height, y + radius + 1),
                     max(0, x - radius):min(width, x + radius + 1)] = 0
    return heatmaps


def time_ms(fn: Callable, repeat: int) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fixture', default=DEFAULT_FIXTURE,
                        help='higherhrnet_decode.npz of the reference data')
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--missing', type=int, default=4,
                        help='joints per person removed before decoding')
    parser.add_argument('--upsample', type=int, default=1,
                        help='enlarge the maps by this factor')
    args = parser.parse_args()
    if not osp.isfile(args.fixture):
        raise FileNotFoundError(
            f'fixture {args.fixture!r} not found: pass --fixture PATH to '
            'shared/reference/fixtures/higherhrnet_decode.npz')

    data = np.load(args.fixture)
    heatmaps = remove_joints(data['heatmaps'][0], data['gt_xy'], args.missing)
    heatmaps = torch.from_numpy(heatmaps)
    tags = torch.from_numpy(data['tags'][0])
    if args.upsample > 1:
        heatmaps = F.interpolate(
            heatmaps[None], scale_factor=args.upsample, mode='bilinear')[0]
        tags = F.interpolate(
            tags.permute(3, 0, 1, 2),
            scale_factor=args.upsample,
            mode='bilinear').permute(1, 2, 3, 0).contiguous()
    grouping = HeatmapParser(COCO_KEYPOINT_ORDER)

    fast = grouping.parse(heatmaps, tags)
    slow = loop_parse(grouping, heatmaps, tags)
    for name, a, b in zip(('grouped', 'scores'), fast, slow):
        if a.shape != b.shape or not np.array_equal(a, b):
            raise AssertionError(
                f'vectorised and loop decode differ in {name}: max |diff| '
                f'{np.abs(a - b).max() if a.shape == b.shape else a.shape}')
    decoded = int((fast[0][:, :, 2] > 0).sum())
    vectorised_ms = time_ms(lambda: grouping.parse(heatmaps, tags),
                            args.repeat)
    loop_ms = time_ms(lambda: loop_parse(grouping, heatmaps, tags),
                      args.repeat)
    print(f'maps {tuple(heatmaps.shape)}, {fast[0].shape[0]} people, '
          f'{args.missing} joints/person removed, {decoded} joints decoded, '
          f'identical results')
    print(f'vectorised decode: {vectorised_ms:.2f} ms')
    print(f'loop reference:    {loop_ms:.2f} ms')
    print(f'ratio (loop / vectorised): {loop_ms / vectorised_ms:.2f}x')


if __name__ == '__main__':
    main()
