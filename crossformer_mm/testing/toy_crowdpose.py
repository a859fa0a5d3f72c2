"""Write a small CrowdPose-format toy set of stick figures (14 joints).

    python tools/misc/make_toy_data.py crowdpose data/toy_crowdpose
        [--num-train 200] [--num-test 40] [--size 256] [--seed 0]

Layout (mmpose's CrowdPose layout that ``CrowdPoseDataset`` reads)::

    OUT/images/100001.png ...
    OUT/annotations/mmpose_crowdpose_train.json   (~80% of --num-train)
    OUT/annotations/mmpose_crowdpose_val.json     (the rest)
    OUT/annotations/mmpose_crowdpose_trainval.json (both, as the original trains)
    OUT/annotations/mmpose_crowdpose_test.json

The figures are those of :mod:`crossformer_mm.testing.toy_coco_keypoints`
(same drawing, poses and joint-type colours) with CrowdPose's 14 joints: the
12 limb joints, the top of the head and the neck (the shoulders' midpoint),
connected by CrowdPose's skeleton. As in CrowdPose, every person is labelled
(no crowd regions, no segmentations or areas) and every image record holds its
``crowdIndex``: the mean over its people of (joints of the other people inside
the person's box) / (the person's own joints), computed from the labels.
Images are sparse (people spread over the width), overlapping or dense (people
side by side at a fraction of their height), so that the easy (< 0.2),
medium (< 0.8) and hard (>= 0.8) crowd-index groups of the CrowdPose
evaluation are all populated.
"""

import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .coco_format import person_keypoints_json, write_annotations
from .toy_coco_keypoints import (
    IMAGE_SHAPES,
    PART_COLOURS,
    body_colours,
    draw_background,
    draw_figure,
    figure_keypoints,
)

KEYPOINT_NAMES = (
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
    'top_head',
    'neck',
)
#: CrowdPose skeleton (1-based joint ids, the links of mmpose's metainfo).
SKELETON = [
    [11, 9],
    [9, 7],
    [12, 10],
    [10, 8],
    [7, 8],
    [1, 7],
    [2, 8],
    [1, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [13, 14],
    [2, 14],
    [1, 14],
]
#: One BGR colour per joint type, the same on both sides (see the COCO toy).
JOINT_COLOURS = np.array(
    [
        dict(PART_COLOURS, head=(255, 255, 255), neck=(0, 255, 255))[name.split('_')[-1]]
        for name in KEYPOINT_NAMES
    ]
)
#: The top of the head lies this far beyond the nose, in units of the
#: neck-to-nose distance (the drawn head's radius over that distance).
HEAD_TOP = 0.09 / 0.11
#: Crowd levels: horizontal spacing of neighbouring people in units of their
#: height (None: spread over the image width), and how often each occurs.
LEVELS = (None, (0.4, 0.6), (0.2, 0.32))
LEVEL_PROBS = (0.4, 0.35, 0.25)
#: CrowdPose's crowd-index bounds of the easy / medium / hard groups.
CROWD_INDEX_BOUNDS = (0.2, 0.8)


def crowdpose_keypoints(coco: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """CrowdPose joints (14, 2) of a COCO figure (17, 2), and its head centre
    (the COCO nose, where the filled head is drawn)."""
    neck = (coco[5] + coco[6]) / 2
    top_head = coco[0] + (coco[0] - neck) * HEAD_TOP
    return np.concatenate([coco[5:17], top_head[None], neck[None]]), coco[0]


def person_annotation(keypoints: np.ndarray, width: int, height: int, margin: float) -> Dict:
    """CrowdPose fields of one person: keypoints (v=2 inside the image, else
    0), box of the padded extent of the joints inside, num_keypoints."""
    inside = (
        (keypoints[:, 0] >= 0)
        & (keypoints[:, 0] < width)
        & (keypoints[:, 1] >= 0)
        & (keypoints[:, 1] < height)
    )
    kpts = np.zeros((len(keypoints), 3))
    kpts[inside, :2] = np.round(keypoints[inside], 2)
    kpts[inside, 2] = 2
    x0, y0 = np.clip(keypoints[inside].min(0) - margin, 0, None)
    x1, y1 = np.minimum(keypoints[inside].max(0) + margin, (width - 1, height - 1))
    return dict(
        keypoints=kpts.flatten().tolist(),
        num_keypoints=int(inside.sum()),
        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        iscrowd=0,
    )


def crowd_index(annotations: List[Dict]) -> float:
    """CrowdPose's crowd index of one image: the mean over its people of
    (labelled joints of the other people inside the person's box) / (the
    person's labelled joints); 0 for one person."""
    people = [
        (np.array(a['keypoints']).reshape(-1, 3), a['bbox'])
        for a in annotations
        if a['num_keypoints'] > 0
    ]
    if len(people) < 2:
        return 0.0
    ratios = []
    for i, (own, (x, y, w, h)) in enumerate(people):
        others = np.concatenate([k for j, (k, _) in enumerate(people) if j != i])
        others = others[others[:, 2] > 0]
        inside = (
            (others[:, 0] >= x)
            & (others[:, 0] <= x + w)
            & (others[:, 1] >= y)
            & (others[:, 1] <= y + h)
        )
        ratios.append(inside.sum() / (own[:, 2] > 0).sum())
    return float(np.mean(ratios))


def draw_image(rng: np.random.Generator, base_size: int) -> Tuple[np.ndarray, List[Dict], float]:
    """One BGR image, its person annotations (without ids) and crowd index."""
    fh, fw = IMAGE_SHAPES[int(rng.integers(len(IMAGE_SHAPES)))]
    height, width = int(base_size * fh), int(base_size * fw)
    image = draw_background(rng, height, width)
    size = min(height, width)
    spacing = LEVELS[int(rng.choice(len(LEVELS), p=LEVEL_PROBS))]
    num_people = int(rng.integers(1, 5)) if spacing is None else int(rng.integers(2, 4))
    figure_h = size * rng.uniform(0.5, 0.8)
    heights = figure_h * rng.uniform(0.85, 1.15, num_people)
    if spacing is None:
        slots = rng.permutation(np.linspace(0.15, 0.85, num_people))
        centres = width * slots + rng.uniform(-0.05, 0.05, num_people) * width
    else:
        steps = figure_h * rng.uniform(*spacing, num_people - 1)
        offsets = np.concatenate([[0.0], np.cumsum(steps)])
        centres = rng.uniform(0.3, 0.7) * width + offsets - offsets[-1] / 2
    annotations = []
    for cx, fig_h, colour in zip(centres, heights, body_colours(rng, num_people)):
        cy = height * rng.uniform(0.45, 0.6)
        keypoints, head = crowdpose_keypoints(figure_keypoints(rng, cx, cy, fig_h))
        draw_figure(image, keypoints, fig_h, colour, SKELETON, JOINT_COLOURS, head)
        person = person_annotation(keypoints, width, height, fig_h * 0.05)
        if person['num_keypoints'] > 0:
            annotations.append(person)
    return image, annotations, crowd_index(annotations)


def write_images(
    out_dir: str, first_id: int, num_images: int, size: int, rng: np.random.Generator
) -> Tuple[List[Dict], List[Dict]]:
    """Write ``num_images`` images to ``out_dir/images``; return their image
    records (with ``crowdIndex``) and person annotations (ids from the image
    id)."""
    images, annotations = [], []
    for image_id in range(first_id, first_id + num_images):
        image, people, index = draw_image(rng, size)
        file_name = f'{image_id}.png'
        cv2.imwrite(osp.join(out_dir, 'images', file_name), image)
        images.append(
            dict(
                id=image_id,
                file_name=file_name,
                width=image.shape[1],
                height=image.shape[0],
                crowdIndex=round(index, 2),
            )
        )
        for i, person in enumerate(people):
            annotations.append(
                dict(person, id=image_id * 100 + i, image_id=image_id, category_id=1)
            )
    return images, annotations


def crowdpose_json(images: List[Dict], annotations: List[Dict]) -> Dict:
    return person_keypoints_json(images, annotations, KEYPOINT_NAMES, SKELETON)


def crowd_groups(images: List[Dict]) -> Tuple[int, int, int]:
    """Numbers of easy / medium / hard images by crowd index."""
    index = np.array([img['crowdIndex'] for img in images])
    easy, hard = CROWD_INDEX_BOUNDS
    return (
        int((index < easy).sum()),
        int(((index >= easy) & (index < hard)).sum()),
        int((index >= hard).sum()),
    )


def make_toy_crowdpose(
    out_dir: str, num_train: int = 200, num_test: int = 40, size: int = 256, seed: int = 0
) -> Dict[str, str]:
    """Write the toy set; return the annotation file of each split (train,
    val, trainval, test)."""
    if size < 64:
        raise ValueError(f'--size {size}: images must be at least 64 px')
    if num_train < 2 or num_test < 1:
        raise ValueError(
            '--num-train must be at least 2 (train and val get '
            'one image each) and --num-test at least 1'
        )
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    num_val = max(1, num_train // 5)
    splits = {}
    for split, first_id, num in (
        ('train', 100001, num_train - num_val),
        ('val', 200001, num_val),
        ('test', 300001, num_test),
    ):
        splits[split] = write_images(out_dir, first_id, num, size, rng)
    splits['trainval'] = tuple(a + b for a, b in zip(splits['train'], splits['val']))
    ann_files = {}
    for split in ('train', 'val', 'trainval', 'test'):
        images, annotations = splits[split]
        ann_files[split] = write_annotations(
            out_dir, f'mmpose_crowdpose_{split}.json', crowdpose_json(images, annotations)
        )
        easy, medium, hard = crowd_groups(images)
        print(
            f'{split}: {len(images)} images, {len(annotations)} people, '
            f'crowd index easy/medium/hard {easy}/{medium}/{hard} images '
            f'-> {ann_files[split]}'
        )
    return ann_files
