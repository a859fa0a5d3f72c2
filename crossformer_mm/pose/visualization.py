"""Pictures of bottom-up pose predictions next to the ground truth.

Drawing is mmpose's :class:`~mmpose.visualization.PoseLocalVisualizer` with the
dataset's meta information (its skeleton links, link and keypoint colours),
so COCO and CrowdPose figures are drawn as mmpose draws them; several images
are put side by side with :func:`crossformer_mm.utils.image_grid.tile_images`.
Used by ``tools/misc/draw_poses.py`` and the toy learning check
(``tools/misc/train_toy_pose.py``). Not imported by ``crossformer_mm.pose``.

Images are BGR (H, W, 3) uint8 throughout, as read by ``cv2.imread``.
"""

import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample
from mmpose.visualization import PoseLocalVisualizer

from ..utils.image_grid import tile_images

#: Pictures are drawn with the image's short side scaled to at least this.
MIN_SHORT_SIDE = 384
#: The image is darkened by this factor under the drawn skeletons.
DIM = 0.55


def ground_truth_instances(ann_file: str, image_name: str) -> Optional[InstanceData]:
    """The labelled people of one image of a COCO-style keypoint file
    (COCO, CrowdPose), found by its file name (the base name is enough).

    Returns:
        InstanceData with keypoints (N, K, 2) and keypoints_visible (N, K)
        (1 = labelled), or None if the file does not list the image.
    """
    with open(ann_file) as f:
        coco = json.load(f)
    name = osp.basename(image_name)
    images = [i for i in coco['images'] if osp.basename(i['file_name']) == name]
    if not images:
        return None
    people = [
        a
        for a in coco['annotations']
        if a['image_id'] == images[0]['id']
        and a.get('num_keypoints', 1) > 0
        and not a.get('iscrowd', 0)
    ]
    num_keypoints = len(coco['categories'][0]['keypoints'])
    keypoints = np.array([a['keypoints'] for a in people], dtype=np.float32).reshape(
        -1, num_keypoints, 3
    )
    return InstanceData(
        keypoints=keypoints[..., :2], keypoints_visible=(keypoints[..., 2] > 0).astype(np.float32)
    )


def confident_people(pred_instances: InstanceData, score_thr: float) -> InstanceData:
    """The predicted people whose person score (``bbox_scores``, the mean
    joint value before refinement) is at least ``score_thr``."""
    if 'bbox_scores' not in pred_instances or len(pred_instances) == 0:
        return pred_instances
    keep = np.asarray(pred_instances.bbox_scores) >= score_thr
    return pred_instances[keep]


def draw_pose_panels(
    image: np.ndarray,
    dataset_meta: Dict,
    pred_instances: Optional[InstanceData] = None,
    gt_instances: Optional[InstanceData] = None,
    kpt_thr: float = 0.3,
    score_thr: float = 0.2,
    min_short_side: int = MIN_SHORT_SIDE,
) -> np.ndarray:
    """Ground truth (left, if given) and prediction (right) of one image.

    Args:
        image: (H, W, 3) BGR.
        dataset_meta: the dataset's parsed metainfo (``model.dataset_meta``,
            ``dataset.metainfo``): skeleton_links, skeleton_link_colors,
            keypoint_colors.
        pred_instances: predicted keypoints (P, K, 2) in image pixels with
            keypoint_scores (P, K) and bbox_scores (P,).
        gt_instances: keypoints (N, K, 2), keypoints_visible (N, K).
        kpt_thr: joints (and their links) below this score are not drawn.
        score_thr: people below this person score are not drawn.
        min_short_side: the image is enlarged (never reduced) to this short
            side first, so that small images get readable skeletons.

    Returns:
        (h, w * panels, 3) BGR picture.
    """
    if pred_instances is None and gt_instances is None:
        raise ValueError('draw_pose_panels needs pred_instances, gt_instances or both')
    scale = max(1.0, min_short_side / min(image.shape[:2]))
    canvas = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        if scale > 1
        else image
    )
    # dimmed, so that the drawn skeletons stand out
    canvas = (canvas.astype(np.float32) * DIM).astype(np.uint8)
    short_side = min(canvas.shape[:2])
    visualizer = PoseLocalVisualizer(
        name='crossformer_mm_pose_panels',
        radius=max(2, round(short_side / 100)),
        line_width=max(2, round(short_side / 130)),
    )
    visualizer.set_dataset_meta(dataset_meta)
    sample = PoseDataSample()
    if gt_instances is not None:
        gt = gt_instances.clone()
        gt.keypoints = np.asarray(gt.keypoints) * scale
        sample.gt_instances = gt
    if pred_instances is not None:
        pred = confident_people(pred_instances, score_thr).clone()
        pred.keypoints = np.asarray(pred.keypoints) * scale
        pred.keypoints_visible = np.asarray(pred.keypoint_scores)
        sample.pred_instances = pred
    drawn = visualizer.add_datasample(
        'poses',
        np.ascontiguousarray(canvas[..., ::-1]),  # the visualizer draws RGB
        sample,
        draw_gt=gt_instances is not None,
        draw_pred=pred_instances is not None,
        draw_bbox=False,
        kpt_thr=kpt_thr,
        show=False,
    )
    return np.ascontiguousarray(drawn[..., ::-1])


def predict_and_draw(
    model,
    image_paths: Sequence[str],
    ann_file: Optional[str] = None,
    kpt_thr: float = 0.3,
    score_thr: float = 0.2,
    columns: int = 2,
) -> Tuple[np.ndarray, List]:
    """Run a bottom-up model (from ``mmpose.apis.init_model``) on images and
    tile one [ground truth | prediction] panel per image.

    Args:
        model: the pose estimator, with ``dataset_meta`` and ``cfg``.
        image_paths: images of any size.
        ann_file: COCO-style keypoint file holding the images' ground truth
            (optional; without it the panels show the plain image and the
            prediction).
        kpt_thr, score_thr: see :func:`draw_pose_panels`.
        columns: panels per row.

    Returns:
        the tiled BGR picture and the list of predicted ``PoseDataSample``.
    """
    from mmpose.apis import inference_bottomup

    panels, samples = [], []
    for path in image_paths:
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'cannot read the image {path!r}')
        sample = inference_bottomup(model, image)[0]
        samples.append(sample)
        gt = ground_truth_instances(ann_file, path) if ann_file else None
        if gt is None:  # the plain image beside the prediction
            gt = InstanceData(
                keypoints=np.zeros((0, len(model.dataset_meta['keypoint_id2name']), 2)),
                keypoints_visible=np.zeros((0, len(model.dataset_meta['keypoint_id2name']))),
            )
        panels.append(
            draw_pose_panels(
                image, model.dataset_meta, sample.pred_instances, gt, kpt_thr, score_thr
            )
        )
    return tile_images(panels, columns=columns), samples


def annotated_images(ann_file: str, image_dir: str, num_images: int) -> List[str]:
    """Paths of the first ``num_images`` images of a COCO-style keypoint
    file, in ``image_dir``."""
    with open(ann_file) as f:
        images = json.load(f)['images']
    return [osp.join(image_dir, i['file_name']) for i in images[:num_images]]


def draw_test_predictions(model, out_file: str, num_images: int = 4, **kwargs) -> List:
    """[ground truth | prediction] panels of the first ``num_images`` test
    images of the model's config (``test_dataloader`` / ``test_evaluator``)
    written to ``out_file`` (PNG); ``kwargs`` go to :func:`predict_and_draw`.
    Returns the predicted ``PoseDataSample`` list."""
    dataset = model.cfg.test_dataloader.dataset
    ann_file = model.cfg.test_evaluator.ann_file
    image_dir = osp.join(dataset.data_root, dataset.data_prefix.img)
    picture, samples = predict_and_draw(
        model, annotated_images(ann_file, image_dir, num_images), ann_file, **kwargs
    )
    if not cv2.imwrite(out_file, picture):
        raise OSError(f'cannot write the picture to {out_file!r}')
    return samples
