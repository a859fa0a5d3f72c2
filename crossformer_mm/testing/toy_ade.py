"""Write a small synthetic dataset in the ADE20K (ADEChallengeData2016) layout.

The result is read by mmseg's stock ``ADE20KDataset`` without any change::

    OUT/images/training/ADE_train_00000001.jpg       scene (JPEG)
    OUT/annotations/training/ADE_train_00000001.png  uint8 label map
    OUT/images/validation/ADE_val_00000001.jpg
    OUT/annotations/validation/ADE_val_00000001.png

Label maps follow ADE20K's convention: 0 is "other / unlabelled" and ``k`` is
ADE20K class ``k - 1``. ``ADE20KDataset`` reads them with
``reduce_zero_label=True``, so 0 becomes the ignore index 255 and the drawn
classes become the usual 0-based ADE20K ids. Each scene has a wall
background, a sky band at the top, a floor band at the bottom, trees
(ellipses) and people (rectangles), every class with its own colour and
pixel noise, and sometimes an unlabelled grey patch.

Example::

    python tools/misc/make_toy_data.py ade data/toy_ade --num-train 40 --num-val 10
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmseg.datasets import ADE20KDataset

#: ADE20K class name -> mean RGB colour of its toy regions.
CLASS_COLOURS: Dict[str, Tuple[int, int, int]] = {
    'wall': (200, 180, 150),
    'sky': (110, 170, 235),
    'floor': (100, 80, 60),
    'tree': (40, 140, 50),
    'person': (220, 40, 60),
}
UNLABELLED_COLOUR = (128, 128, 128)
NOISE_STD = 12.0

SPLITS = {'training': 'train', 'validation': 'val'}


def ade_label(name: str) -> int:
    """The value of ADE20K class ``name`` in an annotation file (1-based)."""
    classes = ADE20KDataset.METAINFO['classes']
    if name not in classes:
        raise KeyError(f'{name!r} is not an ADE20K class name')
    return classes.index(name) + 1


def draw_scene(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one toy scene.

    Returns:
        tuple: RGB image (H, W, 3) uint8 and ADE20K label map (H, W) uint8.
    """
    colour = np.zeros((height, width, 3), np.uint8)
    label = np.zeros((height, width), np.uint8)

    def paint(mask: np.ndarray, name: Optional[str]) -> None:
        colour[mask] = CLASS_COLOURS[name] if name else UNLABELLED_COLOUR
        label[mask] = ade_label(name) if name else 0

    rows, cols = np.mgrid[:height, :width]
    paint(np.ones_like(label, bool), 'wall')
    paint(rows < rng.integers(height // 8, height // 3), 'sky')
    paint(rows >= height - rng.integers(height // 8, height // 3), 'floor')
    for _ in range(rng.integers(1, 3)):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.1, 0.9) * width
        ry = rng.uniform(0.1, 0.25) * height
        rx = rng.uniform(0.08, 0.2) * width
        paint(((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1, 'tree')
    for _ in range(rng.integers(1, 3)):
        h, w = int(rng.uniform(0.25, 0.5) * height), int(rng.uniform(0.06, 0.15) * width)
        top, left = rng.integers(0, height - h), rng.integers(0, width - w)
        paint((rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w), 'person')
    if rng.random() < 0.5:
        h, w = max(2, height // 10), max(2, width // 10)
        top, left = rng.integers(0, height - h), rng.integers(0, width - w)
        paint((rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w), None)

    noisy = colour + rng.normal(0, NOISE_STD, colour.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), label


def make_toy_ade(
    out_dir: str,
    num_train: int = 40,
    num_val: int = 10,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
) -> Dict[str, List[str]]:
    """Write the toy dataset under ``out_dir``.

    Returns:
        dict: split folder name ('training' / 'validation') -> the image
        files written.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(
            f'need at least one image per split, got num_train={num_train}, num_val={num_val}'
        )
    if min(height, width) < 20:
        raise ValueError(
            f'images must be at least 20x20 pixels to hold the scene, got {height}x{width}'
        )
    rng = np.random.default_rng(seed)
    written: Dict[str, List[str]] = {}
    for split, count in (('training', num_train), ('validation', num_val)):
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        written[split] = []
        for index in range(1, count + 1):
            image, label = draw_scene(rng, height, width)
            stem = f'ADE_{SPLITS[split]}_{index:08d}'
            img_path = osp.join(img_dir, stem + '.jpg')
            cv2.imwrite(
                img_path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
            cv2.imwrite(osp.join(ann_dir, stem + '.png'), label)
            written[split].append(img_path)
    return written
