"""Write a small COCO person-keypoints toy set of stick figures.

    python tools/misc/make_toy_data.py coco-keypoints data/toy_coco_kpt
        [--num-train 200] [--num-val 40] [--size 256] [--seed 0]

Layout (the COCO layout that ``CocoDataset`` reads)::

    OUT/train/000001.png ...   OUT/annotations/person_keypoints_train.json
    OUT/val/000001.png ...     OUT/annotations/person_keypoints_val.json

Every image holds 1-4 labelled stick figures with the 17 COCO joints drawn as
coloured dots (one colour per joint type, left and right alike) on a body
of thick limbs in the figure's own colour (the identity cue that the tags can
learn), on a noisy background with clutter. Joints outside the image are
unlabelled (v=0), the others visible (v=2). Some images also hold an
unlabelled person (``num_keypoints=0``, polygon segmentation) and a crowd
region of small figures (``iscrowd=1``, RLE segmentation), which bottom-up
training masks out and COCO evaluation ignores. Image sizes vary (square,
landscape, portrait) around ``--size``.
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .coco_format import check_toy_args, person_keypoints_json, write_annotations

KEYPOINT_NAMES = (
    'nose',
    'left_eye',
    'right_eye',
    'left_ear',
    'right_ear',
    'left_shoulder',
    'right_shoulder',
    'left_elbow',
    'right_elbow',
    'left_wrist',
    'right_wrist',
    'left_hip',
    'right_hip',
    'left_knee',
    'right_knee',
    'left_ankle',
    'right_ankle',
)
#: COCO skeleton (1-based joint ids), also the limbs that are drawn.
SKELETON = [
    [16, 14],
    [14, 12],
    [17, 15],
    [15, 13],
    [12, 13],
    [6, 12],
    [7, 13],
    [6, 7],
    [6, 8],
    [7, 9],
    [8, 10],
    [9, 11],
    [2, 3],
    [1, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [5, 7],
]
#: One BGR colour per joint type, the same on both sides: flip augmentation
#: swaps the left / right labels, so (as on real people) the side of a joint
#: is told by where it sits on the body, not by its colour.
PART_COLOURS = dict(
    nose=(255, 255, 255),
    eye=(0, 255, 255),
    ear=(255, 0, 255),
    shoulder=(0, 0, 255),
    elbow=(0, 255, 0),
    wrist=(255, 0, 0),
    hip=(0, 128, 255),
    knee=(255, 255, 0),
    ankle=(128, 0, 128),
)
JOINT_COLOURS = np.array([PART_COLOURS[name.split('_')[-1]] for name in KEYPOINT_NAMES])
#: Joints of an upright figure of height 1 facing the viewer (its left on
#: the image right), centred at the hips; limbs are added by angle below.
FACE_AND_TORSO = {
    0: (0.0, -0.39),
    1: (0.045, -0.44),
    2: (-0.045, -0.44),
    3: (0.09, -0.41),
    4: (-0.09, -0.41),
    5: (0.12, -0.28),
    6: (-0.12, -0.28),
    11: (0.08, 0.02),
    12: (-0.08, 0.02),
}
#: (root joint, middle joint, end joint, segment length) of the limbs.
LIMBS = ((5, 7, 9, 0.16), (6, 8, 10, 0.16), (11, 13, 15, 0.24), (12, 14, 16, 0.24))
IMAGE_SHAPES = ((1.0, 1.0), (1.0, 1.25), (1.25, 1.0))  # (h, w) factors


def figure_keypoints(rng: np.random.Generator, cx: float, cy: float, height: float) -> np.ndarray:
    """(17, 2) joints of a randomly posed figure of ``height`` pixels."""
    points = np.zeros((17, 2))
    for joint, xy in FACE_AND_TORSO.items():
        points[joint] = xy
    for root, middle, end, length in LIMBS:
        arm = root in (5, 6)
        side = 1 if root in (5, 11) else -1
        upper = rng.uniform(-0.3, 1.6) if arm else rng.uniform(-0.1, 0.45)
        lower = upper + (rng.uniform(-0.6, 0.9) if arm else rng.uniform(-0.5, 0.1))
        # angles from straight down, positive = away from the body
        points[middle] = points[root] + length * np.array([side * np.sin(upper), np.cos(upper)])
        points[end] = points[middle] + length * np.array([side * np.sin(lower), np.cos(lower)])
    angle = rng.uniform(-0.25, 0.25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    width_factor = rng.uniform(0.85, 1.2)
    points = points * [width_factor, 1.0] @ rotation.T
    return points * height + [cx, cy]


def draw_figure(
    image: np.ndarray,
    keypoints: np.ndarray,
    height: float,
    body_colour: Tuple[int, int, int],
    skeleton: Sequence[Sequence[int]] = SKELETON,
    joint_colours: np.ndarray = JOINT_COLOURS,
    head: Optional[np.ndarray] = None,
) -> None:
    """Draw the body (thick limbs, filled head) in the figure's own colour,
    then the joint dots in their joint-type colours.

    ``keypoints`` (K, 2) are the dataset's joints, ``skeleton`` its limbs
    (1-based joint pairs) and ``joint_colours`` (K, 3) BGR; the defaults are
    COCO's. ``head`` is the centre of the filled head (default: joint 0, the
    COCO nose).
    """
    thickness = max(2, int(round(height / 20)))
    pts = np.round(keypoints).astype(np.int32)
    for a, b in skeleton:
        cv2.line(image, tuple(pts[a - 1]), tuple(pts[b - 1]), body_colour, thickness, cv2.LINE_AA)
    head = pts[0] if head is None else np.round(head).astype(np.int32)
    cv2.circle(
        image, tuple(int(v) for v in head), max(2, int(height * 0.09)), body_colour, -1, cv2.LINE_AA
    )
    radius = max(2, int(round(height / 28)))
    for joint, (x, y) in enumerate(pts):
        cv2.circle(
            image,
            (int(x), int(y)),
            radius,
            tuple(int(c) for c in joint_colours[joint]),
            -1,
            cv2.LINE_AA,
        )


def body_colours(rng: np.random.Generator, num: int) -> List[Tuple]:
    """``num`` clearly different BGR colours (hues spread over the circle)."""
    hues = (rng.uniform(0, 180) + np.arange(num) * 180 / num) % 180
    hsv = np.stack([hues, np.full(num, 170), np.full(num, 230)], 1)
    bgr = cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2BGR)[0]
    return [tuple(int(c) for c in colour) for colour in bgr]


def person_annotation(
    keypoints: np.ndarray, width: int, height: int, labelled: bool, margin: float
) -> Dict:
    """COCO fields of one person: keypoints (v=2 inside the image, else 0),
    box and polygon segmentation of the padded joint extent, area."""
    inside = (
        (keypoints[:, 0] >= 0)
        & (keypoints[:, 0] < width)
        & (keypoints[:, 1] >= 0)
        & (keypoints[:, 1] < height)
    )
    x0, y0 = np.clip(keypoints.min(0) - margin, 0, None)
    x1, y1 = np.minimum(keypoints.max(0) + margin, (width - 1, height - 1))
    kpts = np.zeros((17, 3))
    if labelled:
        kpts[inside, :2] = np.round(keypoints[inside], 2)
        kpts[inside, 2] = 2
    box_w, box_h = float(x1 - x0), float(y1 - y0)
    return dict(
        keypoints=kpts.flatten().tolist(),
        num_keypoints=int(labelled and inside.sum()),
        bbox=[float(x0), float(y0), box_w, box_h],
        segmentation=[
            [float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]
        ],
        area=box_w * box_h * 0.53,
        iscrowd=0,
    )


def crowd_annotation(rng: np.random.Generator, image: np.ndarray) -> Dict:
    """Draw a band of small figures; return its ``iscrowd=1`` annotation with
    an uncompressed RLE segmentation (as COCO stores crowds)."""
    height, width = image.shape[:2]
    size = min(height, width)
    region_w, region_h = int(size * rng.uniform(0.3, 0.5)), int(size * 0.3)
    x0 = int(rng.integers(0, width - region_w))
    y0 = int(rng.integers(0, height - region_h))
    figure_h = region_h * 0.8
    for cx in np.linspace(
        x0 + figure_h * 0.2, x0 + region_w - figure_h * 0.2, int(rng.integers(3, 6))
    ):
        kpts = figure_keypoints(rng, cx, y0 + region_h / 2, figure_h)
        draw_figure(image, kpts, figure_h, (200, 200, 200))
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0 : y0 + region_h, x0 : x0 + region_w] = 1
    return dict(
        keypoints=[0] * 51,
        num_keypoints=0,
        bbox=[float(x0), float(y0), float(region_w), float(region_h)],
        segmentation=uncompressed_rle(mask),
        area=float(mask.sum()),
        iscrowd=1,
    )


def uncompressed_rle(mask: np.ndarray) -> Dict:
    """COCO's uncompressed RLE of a binary (h, w) mask: run lengths in
    column-major order, the first run counting zeros."""
    flat = mask.flatten(order='F')
    changes = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return dict(counts=counts, size=list(mask.shape))


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width, 3) BGR noisy background with a few clutter lines."""
    background = rng.integers(20, 90, 3)
    image = np.clip(background + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):  # clutter
        p0 = rng.integers(0, (width, height))
        p1 = p0 + rng.integers(-40, 40, 2)
        cv2.line(
            image,
            tuple(int(v) for v in p0),
            tuple(int(v) for v in p1),
            tuple(int(c) for c in rng.integers(60, 160, 3)),
            2,
        )
    return image


def draw_image(rng: np.random.Generator, base_size: int) -> Tuple[np.ndarray, List[Dict]]:
    """One BGR image and its person annotations (without ids)."""
    fh, fw = IMAGE_SHAPES[int(rng.integers(len(IMAGE_SHAPES)))]
    height, width = int(base_size * fh), int(base_size * fw)
    image = draw_background(rng, height, width)
    annotations = []
    if rng.random() < 0.3:
        annotations.append(crowd_annotation(rng, image))
    size = min(height, width)
    num_people = int(rng.integers(1, 5))
    slots = rng.permutation(np.linspace(0.15, 0.85, num_people + 1))
    colours = body_colours(rng, num_people + 1)
    for i in range(num_people + 1):
        labelled = i < num_people
        if not labelled and rng.random() < 0.6:
            continue  # an unlabelled person in 40% of the images
        figure_h = size * rng.uniform(0.45, 0.85)
        cx = width * slots[i] + rng.uniform(-0.05, 0.05) * width
        cy = height * rng.uniform(0.45, 0.6)
        kpts = figure_keypoints(rng, cx, cy, figure_h)
        draw_figure(image, kpts, figure_h, colours[i])
        annotations.append(person_annotation(kpts, width, height, labelled, margin=figure_h * 0.05))
    return image, annotations


def make_split(
    out_dir: str, split: str, num_images: int, size: int, rng: np.random.Generator
) -> Dict:
    """Write the images of one split; return its COCO dict."""
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, people = draw_image(rng, size)
        file_name = f'{image_id:06d}.png'
        cv2.imwrite(osp.join(out_dir, split, file_name), image)
        images.append(
            dict(id=image_id, file_name=file_name, width=image.shape[1], height=image.shape[0])
        )
        for person in people:
            annotations.append(
                dict(person, id=len(annotations) + 1, image_id=image_id, category_id=1)
            )
    return person_keypoints_json(images, annotations, KEYPOINT_NAMES, SKELETON)


def make_toy_coco_keypoints(
    out_dir: str, num_train: int = 200, num_val: int = 40, size: int = 256, seed: int = 0
) -> Dict[str, str]:
    """Write the toy set; return the annotation file of each split."""
    check_toy_args(size, 64, num_train=num_train, num_val=num_val)
    rng = np.random.default_rng(seed)
    ann_files = {}
    for split, num in (('train', num_train), ('val', num_val)):
        coco = make_split(out_dir, split, num, size, rng)
        ann_files[split] = write_annotations(out_dir, f'person_keypoints_{split}.json', coco)
        anns = coco['annotations']
        crowds = sum(a['iscrowd'] for a in anns)
        labelled = sum(a['num_keypoints'] > 0 for a in anns)
        print(
            f'{split}: {len(coco["images"])} images, {labelled} labelled '
            f'people, {crowds} crowd regions, '
            f'{len(anns) - labelled - crowds} unlabelled people -> '
            f'{ann_files[split]}'
        )
    return ann_files
