"""Tile images of any sizes and aspect ratios into one picture (numpy + cv2 only).

Images are placed row-major in a grid: each row is as high as its highest
image and each column as wide as its widest one, so nothing is cropped or
stretched. Every image keeps its aspect ratio; it is scaled down only when
its longer side exceeds ``max_size`` (never scaled up) and sits at the
top-left of its cell, the rest of the cell being ``background``.
"""

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np


class Cell(NamedTuple):
    """Where one image lies in the grid: rows ``y:y+h``, columns ``x:x+w``."""

    y: int
    x: int
    h: int
    w: int


def fitted_size(height: int, width: int, max_size: Optional[int]) -> Tuple[int, int]:
    """``(h, w)`` of an image scaled down (aspect ratio kept, each side >= 1 px)
    so that its longer side is at most ``max_size``; unchanged if it fits or
    ``max_size`` is None."""
    if max_size is None or max(height, width) <= max_size:
        return height, width
    scale = max_size / max(height, width)
    return (
        max(1, min(max_size, round(height * scale))),
        max(1, min(max_size, round(width * scale))),
    )


def grid_layout(
    sizes: Sequence[Tuple[int, int]], columns: int, gap: int = 4
) -> Tuple[Tuple[int, int], List[Cell]]:
    """Grid of ``(h, w)`` sizes, row-major in ``columns`` columns.

    Row ``r`` is as high as its highest image, column ``c`` as wide as its
    widest one; cells are separated by ``gap`` pixels.

    Returns:
        ``(grid_h, grid_w)`` and one :class:`Cell` (the image's own size, at
        the top-left of its grid cell) per size.
    """
    if not sizes:
        raise ValueError('grid_layout needs at least one image size')
    if not isinstance(columns, int) or columns < 1:
        raise ValueError(f'columns must be a positive integer, got {columns!r}')
    if gap < 0:
        raise ValueError(f'gap must be >= 0 pixels, got {gap!r}')
    columns = min(columns, len(sizes))
    rows = math.ceil(len(sizes) / columns)
    row_h = [0] * rows
    col_w = [0] * columns
    for i, (h, w) in enumerate(sizes):
        r, c = divmod(i, columns)
        row_h[r] = max(row_h[r], h)
        col_w[c] = max(col_w[c], w)
    row_y = np.cumsum([0] + [h + gap for h in row_h]).tolist()
    col_x = np.cumsum([0] + [w + gap for w in col_w]).tolist()
    cells = [
        Cell(row_y[r], col_x[c], h, w)
        for (r, c), (h, w) in ((divmod(i, columns), s) for i, s in enumerate(sizes))
    ]
    return (row_y[-1] - gap, col_x[-1] - gap), cells


def as_rgb(image: np.ndarray, index: int = 0) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> (H, W, 3) uint8
    (gray is repeated, alpha dropped)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(
            f'image {index}: expected a uint8 numpy array, got '
            f'{getattr(image, "dtype", type(image).__name__)}; convert it with '
            'np.clip(image, 0, 255).astype(np.uint8)'
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(
            f'image {index}: expected shape (H, W), (H, W, 1), (H, W, 3) or '
            f'(H, W, 4) with H, W >= 1, got {image.shape}'
        )
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def tile_images(
    images: Sequence[np.ndarray],
    columns: int = 4,
    gap: int = 4,
    max_size: Optional[int] = None,
    background: int = 255,
) -> np.ndarray:
    """Tile ``images`` of any sizes into one (H, W, 3) uint8 picture.

    Args:
        images: uint8 arrays (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); channel
            order is kept (gray is repeated, alpha dropped).
        columns: Images per row (fewer if there are fewer images).
        gap: Pixels between cells.
        max_size: Longest side of an image in the grid; larger ones are scaled
            down (aspect ratio kept, ``cv2.INTER_AREA``). None: no limit.
        background: Gray value of the gaps and of the unused part of cells.

    Returns:
        np.ndarray: (grid_h, grid_w, 3) uint8, laid out by :func:`grid_layout`.
    """
    if max_size is not None and max_size < 1:
        raise ValueError(f'max_size must be a positive number of pixels or None, got {max_size!r}')
    rgb = [as_rgb(image, i) for i, image in enumerate(images)]
    fitted = [fitted_size(*image.shape[:2], max_size) for image in rgb]
    (grid_h, grid_w), cells = grid_layout(fitted, columns, gap)
    grid = np.full((grid_h, grid_w, 3), background, np.uint8)
    for image, cell in zip(rgb, cells):
        if image.shape[:2] != (cell.h, cell.w):
            image = cv2.resize(image, (cell.w, cell.h), interpolation=cv2.INTER_AREA)
        grid[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w] = image
    return grid
