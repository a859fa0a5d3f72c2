"""Write a small COCO-format instance-segmentation toy set of coloured shapes.

    python tools/misc/make_toy_data.py coco data/toy_coco [--num-train 200]
        [--num-val 50] [--size 128] [--seed 0]

Layout (what ``configs/_base_/det_toy_coco_instance.py`` reads)::

    OUT/train/000000.png ...   OUT/annotations/instances_train.json
    OUT/val/000000.png ...     OUT/annotations/instances_val.json

Every image holds 1-4 non-overlapping shapes (categories ``square``,
``circle``, ``triangle``) of random size, colour and position on a noisy
background; each instance has a polygon mask, its box and area.
"""

import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .coco_format import check_toy_args, write_annotations

CATEGORIES = ('square', 'circle', 'triangle')


def shape_polygon(category: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a shape of circumradius ``radius``, rotated."""
    num_vertices = {'square': 4, 'circle': 32, 'triangle': 3}[category]
    t = angle + np.arange(num_vertices) * 2 * np.pi / num_vertices
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)


def draw_image(
    rng: np.random.Generator, size: int, max_objects: int = 4
) -> Tuple[np.ndarray, List[Dict]]:
    """One image (size, size, 3) BGR uint8 and its instances."""
    background = rng.integers(0, 80, 3)
    image = np.clip(background + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)
    placed: List[Tuple[float, float, float]] = []
    instances = []
    for _ in range(rng.integers(1, max_objects + 1)):
        for _attempt in range(20):  # rejection sampling: no overlaps
            radius = rng.uniform(0.1, 0.22) * size
            cx, cy = rng.uniform(radius + 1, size - radius - 1, 2)
            if all(np.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, radius))
        label = int(rng.integers(len(CATEGORIES)))
        polygon = shape_polygon(CATEGORIES[label], cx, cy, radius, rng.uniform(0, 2 * np.pi))
        colour = tuple(int(c) for c in rng.integers(110, 256, 3))
        cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], colour)
        instances.append(dict(label=label, polygon=polygon))
    return image, instances


def annotation(instance: Dict, image_id: int, ann_id: int, size: int) -> Dict:
    """COCO annotation of one instance; box and area as pycocotools sees it."""
    segmentation = [np.round(instance['polygon'], 2).flatten().tolist()]
    rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, size, size))
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=instance['label'] + 1,
        segmentation=segmentation,
        area=float(mask_utils.area(rle)),
        bbox=[float(v) for v in mask_utils.toBbox(rle)],
        iscrowd=0,
    )


def make_split(
    out_dir: str, split: str, num_images: int, size: int, rng: np.random.Generator
) -> Dict:
    """Write the images of one split; return its COCO dict."""
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, instances = draw_image(rng, size)
        file_name = f'{image_id:06d}.png'
        cv2.imwrite(osp.join(out_dir, split, file_name), image)
        images.append(dict(id=image_id, file_name=file_name, width=size, height=size))
        for instance in instances:
            annotations.append(annotation(instance, image_id, len(annotations) + 1, size))
    categories = [
        dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CATEGORIES)
    ]
    return dict(images=images, annotations=annotations, categories=categories)


def make_toy_coco(
    out_dir: str, num_train: int = 200, num_val: int = 50, size: int = 128, seed: int = 0
) -> Dict[str, str]:
    """Write the toy set; return the annotation file of each split."""
    check_toy_args(size, 32, num_train=num_train, num_val=num_val)
    rng = np.random.default_rng(seed)
    ann_files = {}
    for split, num in (('train', num_train), ('val', num_val)):
        coco = make_split(out_dir, split, num, size, rng)
        ann_files[split] = write_annotations(out_dir, f'instances_{split}.json', coco)
        print(
            f'{split}: {len(coco["images"])} images, '
            f'{len(coco["annotations"])} instances -> {ann_files[split]}'
        )
    return ann_files
