"""Draw a detector's predictions (boxes, masks, labels) on images, as one grid.

    python tools/misc/visualize_predictions.py CONFIG CHECKPOINT IMAGES...
        --out predictions.png [--num 8] [--score-thr 0.5] [--upscale 2]
        [--columns 4] [--max-size 1333]

``IMAGES`` are image files or folders (their images are taken in sorted
order, ``--num`` in all). Each tile is the image with the predictions above
``--score-thr`` drawn by mmdet's ``DetLocalVisualizer``; ``--upscale``
enlarges small images before inference so that labels stay legible. Images
may have any sizes and aspect ratios: they are tiled by
:func:`crossformer_mm.utils.image_grid.tile_images` (no crop, aspect ratio
kept, drawings longer than ``--max-size`` scaled down).
"""

import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmengine.utils import ProgressBar

from crossformer_mm.utils.cli import add_cfg_options
from crossformer_mm.utils.image_grid import tile_images

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def collect_images(sources: Sequence[str], num: int) -> List[str]:
    """The first ``num`` image files among ``sources`` (files or folders)."""
    paths = []
    for source in sources:
        if osp.isdir(source):
            paths += [
                osp.join(source, name)
                for name in sorted(os.listdir(source))
                if name.lower().endswith(IMAGE_SUFFIXES)
            ]
        elif osp.isfile(source):
            paths.append(source)
        else:
            raise FileNotFoundError(f'{source!r} is neither an image file nor a folder of images')
    if not paths:
        raise FileNotFoundError(f'no images found in {list(sources)}')
    return paths[:num]


def visualize(
    config: str,
    checkpoint: str,
    image_paths: Sequence[str],
    out_file: str,
    score_thr: float = 0.5,
    upscale: int = 1,
    cfg_options: dict = None,
    columns: int = 4,
    max_size: Optional[int] = 1333,
) -> np.ndarray:
    """Predict on ``image_paths``, draw, tile and save to ``out_file``."""
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(config, checkpoint, device='cpu', cfg_options=cfg_options)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    drawn = []
    progress = ProgressBar(len(image_paths))
    for path in image_paths:
        image = mmcv.imread(path, channel_order='rgb')
        if upscale > 1:
            image = mmcv.imrescale(image, upscale, interpolation='nearest')
        result = inference_detector(model, image[..., ::-1].copy())  # BGR
        visualizer.add_datasample(
            osp.basename(path), image, data_sample=result, draw_gt=False, pred_score_thr=score_thr
        )
        drawn.append(visualizer.get_image())
        progress.update()
    grid = tile_images(drawn, columns=columns, max_size=max_size)
    mmcv.imwrite(grid[..., ::-1], out_file)  # RGB -> BGR file
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+', help='image files or folders')
    parser.add_argument('--out', required=True, help='output image file')
    parser.add_argument('--num', type=int, default=8, help='images to draw')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--upscale', type=int, default=1, help='enlarge images by this factor')
    parser.add_argument('--columns', type=int, default=4, help='images per row')
    parser.add_argument(
        '--max-size',
        type=int,
        default=1333,
        help='longest side of a drawing in the grid (larger ones are scaled '
        'down, aspect ratio kept); 0: no limit',
    )
    add_cfg_options(parser)
    args = parser.parse_args()
    paths = collect_images(args.images, args.num)
    visualize(
        args.config,
        args.checkpoint,
        paths,
        args.out,
        args.score_thr,
        args.upscale,
        args.cfg_options,
        args.columns,
        args.max_size or None,
    )
    print(f'\nsaved predictions on {len(paths)} images to {args.out}')


if __name__ == '__main__':
    main()
