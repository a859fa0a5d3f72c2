"""crossformer_mm.utils.image_grid: any mix of sizes, aspect ratios and channels."""

import cv2
import numpy as np
import pytest

from crossformer_mm.utils.image_grid import fitted_size, grid_layout, tile_images

# (h, w[, channels]): COCO-like sizes, extreme aspect ratios, gray and RGBA
SHAPES = [
    (375, 500, 3),
    (426, 640, 3),
    (60, 4000, 3),
    (4000, 60, 3),
    (333, 250),
    (97, 131, 1),
    (50, 70, 4),
]


def _image(shape, seed):
    """Non-repetitive content: smooth gradients plus noise, distinct per seed."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 255 // max(h - 1, 1) + xx * 255 // max(w - 1, 1) * (seed + 1)) % 256
    channels = shape[2] if len(shape) == 3 else 1
    image = np.stack(
        [(base + 37 * c + rng.integers(0, 40, (h, w))) % 256 for c in range(channels)], axis=-1
    ).astype(np.uint8)
    return image if len(shape) == 3 else image[..., 0]


def _rgb(image):
    image = image if image.ndim == 3 else image[..., None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def _find(grid, image):
    """Best (sum of squared differences, top-left) placement of ``image`` in ``grid``."""
    ssd = cv2.matchTemplate(grid.astype(np.float32), image.astype(np.float32), cv2.TM_SQDIFF)
    best, _, where, _ = cv2.minMaxLoc(ssd)
    return best, where[::-1]


def test_unscaled_mix_of_sizes_contains_every_image_exactly():
    images = [_image(s, i) for i, s in enumerate(SHAPES)]
    grid = tile_images(images, columns=3, gap=4)
    (grid_h, grid_w), cells = grid_layout([s[:2] for s in SHAPES], columns=3, gap=4)
    assert grid.shape == (grid_h, grid_w, 3) and grid.dtype == np.uint8
    # rows: max heights of (375, 426, 60), (4000, 333, 97), (50);
    # columns: max widths of (500, 60, 70), (640, 250), (4000, 131)
    assert grid_h == 426 + 4 + 4000 + 4 + 50
    assert grid_w == 500 + 4 + 640 + 4 + 4000
    covered = np.zeros(grid.shape[:2], bool)
    for image, cell in zip(images, cells):
        expected = _rgb(image)
        np.testing.assert_array_equal(
            grid[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w], expected
        )
        assert not covered[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w].any()  # no overlap
        covered[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w] = True
    assert (grid[~covered] == 255).all()  # the rest is background


def test_max_size_scales_down_keeping_aspect_ratio():
    images = [_image(s, i) for i, s in enumerate(SHAPES)]
    grid = tile_images(images, columns=4, gap=2, max_size=400)
    sizes = [fitted_size(*s[:2], 400) for s in SHAPES]
    assert sizes[:4] == [(300, 400), (266, 400), (6, 400), (400, 6)]
    assert sizes[4:] == [(333, 250), (97, 131), (50, 70)]  # small ones are not upscaled
    for (h, w), shape in zip(sizes, SHAPES):
        assert max(h, w) <= 400
        assert abs(h / w - shape[0] / shape[1]) <= 1.0 / min(h, w)  # aspect ratio kept
    (grid_h, grid_w), cells = grid_layout(sizes, columns=4, gap=2)
    assert grid.shape == (grid_h, grid_w, 3)
    # 7 images of <= 400 px in 2 rows x 4 columns
    assert grid_h <= 2 * 400 + 2 and grid_w <= 4 * 400 + 3 * 2
    for image, cell in zip(images, cells):
        expected = _rgb(image)
        if expected.shape[:2] != (cell.h, cell.w):
            expected = cv2.resize(expected, (cell.w, cell.h), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(
            grid[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w], expected
        )
        # independent of the layout: the best match of the image (exact up to the
        # rounding of cv2's FFT correlation) is its cell
        best, where = _find(grid, expected)
        assert best <= 1e-6 * float((expected.astype(np.float64) ** 2).sum())
        assert tuple(where) == (cell.y, cell.x)


def test_single_image_and_columns_beyond_count():
    image = _image((20, 30, 3), 0)
    np.testing.assert_array_equal(tile_images([image], columns=4), image)
    grid = tile_images([image, image[:5]], columns=8, gap=0)
    assert grid.shape == (20, 60, 3)


@pytest.mark.parametrize(
    'kwargs,message',
    [
        (dict(images=[]), 'at least one image'),
        (dict(images=[np.zeros((4, 4, 3), np.float32)]), 'image 0: expected a uint8'),
        (
            dict(images=[np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8)]),
            r'image 1: expected shape',
        ),
        (dict(images=[np.zeros((0, 4, 3), np.uint8)]), 'H, W >= 1'),
        (dict(images=[np.zeros((4, 4), np.uint8)], columns=0), 'columns must be a positive'),
        (dict(images=[np.zeros((4, 4), np.uint8)], max_size=0), 'max_size must be a positive'),
    ],
)
def test_bad_inputs_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_images(**kwargs)
