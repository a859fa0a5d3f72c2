"""What the COCO-format toy writers (:mod:`.toy_coco`, :mod:`.toy_coco_keypoints`,
:mod:`.toy_crowdpose`) share: argument checks and the annotation files."""

import json
import os
import os.path as osp
from typing import Dict, List, Sequence


def check_toy_args(size: int, min_size: int, **counts: int) -> None:
    """Clear errors for an image side below ``min_size`` or a split count below 1
    (``counts``: ``num_train=..., num_val=...``, named as the command-line flags)."""
    if size < min_size:
        raise ValueError(f'--size {size}: images must be at least {min_size} px')
    small = [name for name, count in counts.items() if count < 1]
    if small:
        flags = ' and '.join('--' + name.replace('_', '-') for name in small)
        raise ValueError(f'{flags} must be at least 1')


def write_annotations(out_dir: str, file_name: str, coco: dict) -> str:
    """Write ``coco`` (images, annotations, categories) to
    ``OUT/annotations/FILE_NAME``; return the path."""
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    path = osp.join(out_dir, 'annotations', file_name)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def person_keypoints_json(
    images: List[Dict], annotations: List[Dict], keypoint_names: Sequence[str], skeleton: Sequence
) -> Dict:
    """A COCO person-keypoints file: the images, the people and the one
    ``person`` category with its joint names and skeleton."""
    category = dict(
        id=1,
        name='person',
        supercategory='person',
        keypoints=list(keypoint_names),
        skeleton=skeleton,
    )
    return dict(images=images, annotations=annotations, categories=[category])
