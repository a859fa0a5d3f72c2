"""Time HigherHRNet's grouping decode: vectorised vs. the per-joint loops.

    python tools/analysis/benchmark_decode.py [--fixture NPZ] [--repeat 20]
        [--missing 4]

Runs :class:`~crossformer_mm.pose.grouping.HeatmapParser` (vectorised
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
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from crossformer_mm.pose.codec import COCO_KEYPOINT_ORDER
from crossformer_mm.pose.grouping import HeatmapParser
from crossformer_mm.pose.grouping_reference import loop_parse, remove_joints

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_FIXTURE = osp.join(
    osp.dirname(REPO_ROOT), 'shared', 'reference', 'fixtures', 'higherhrnet_decode.npz'
)


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
    parser.add_argument(
        '--fixture', default=DEFAULT_FIXTURE, help='higherhrnet_decode.npz of the reference data'
    )
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument(
        '--missing', type=int, default=4, help='joints per person removed before decoding'
    )
    parser.add_argument('--upsample', type=int, default=1, help='enlarge the maps by this factor')
    args = parser.parse_args()
    if not osp.isfile(args.fixture):
        raise FileNotFoundError(
            f'fixture {args.fixture!r} not found: pass --fixture PATH to '
            'shared/reference/fixtures/higherhrnet_decode.npz'
        )

    data = np.load(args.fixture)
    heatmaps = remove_joints(data['heatmaps'][0], data['gt_xy'], args.missing)
    heatmaps = torch.from_numpy(heatmaps)
    tags = torch.from_numpy(data['tags'][0])
    if args.upsample > 1:
        heatmaps = F.interpolate(heatmaps[None], scale_factor=args.upsample, mode='bilinear')[0]
        tags = (
            F.interpolate(tags.permute(3, 0, 1, 2), scale_factor=args.upsample, mode='bilinear')
            .permute(1, 2, 3, 0)
            .contiguous()
        )
    grouping = HeatmapParser(COCO_KEYPOINT_ORDER)

    fast = grouping.parse(heatmaps, tags)
    slow = loop_parse(grouping, heatmaps, tags)
    for name, a, b in zip(('grouped', 'scores'), fast, slow):
        if a.shape != b.shape or not np.array_equal(a, b):
            raise AssertionError(
                f'vectorised and loop decode differ in {name}: max |diff| '
                f'{np.abs(a - b).max() if a.shape == b.shape else a.shape}'
            )
    decoded = int((fast[0][:, :, 2] > 0).sum())
    vectorised_ms = time_ms(lambda: grouping.parse(heatmaps, tags), args.repeat)
    loop_ms = time_ms(lambda: loop_parse(grouping, heatmaps, tags), args.repeat)
    print(
        f'maps {tuple(heatmaps.shape)}, {fast[0].shape[0]} people, '
        f'{args.missing} joints/person removed, {decoded} joints decoded, '
        f'identical results'
    )
    print(f'vectorised decode: {vectorised_ms:.2f} ms')
    print(f'loop reference:    {loop_ms:.2f} ms')
    print(f'ratio (loop / vectorised): {loop_ms / vectorised_ms:.2f}x')


if __name__ == '__main__':
    main()
