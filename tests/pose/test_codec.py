"""Two-resolution AE codec: targets on known joints, masks, and the packed
training sample that the head's loss reads."""

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpose.registry import KEYPOINT_CODECS, TRANSFORMS

import crossformer_mm.pose  # noqa: F401  (registers the modules)
from crossformer_mm.pose.codec import HigherResolutionAssociativeEmbedding
from crossformer_mm.testing.toy_coco_keypoints import uncompressed_rle

INPUT = (64, 48)  # (w, h): maps (16, 12) at stride 4, (32, 24) at stride 2


def gaussian(dx, dy, sigma=2.0):
    return np.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def encode(keypoints, visible=None, input_size=INPUT):
    codec = HigherResolutionAssociativeEmbedding()
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if visible is None:
        visible = np.ones(keypoints.shape[:2], dtype=np.float32)
    return codec.encode(keypoints, np.asarray(visible, np.float32), input_size=input_size)


def one_joint(x, y, num_keypoints=3, joint=1):
    keypoints = np.zeros((1, num_keypoints, 2), dtype=np.float32)
    visible = np.zeros((1, num_keypoints), dtype=np.float32)
    keypoints[0, joint] = x, y
    visible[0, joint] = 1
    return keypoints, visible


def test_floored_placement_and_window_at_both_strides():
    encoded = encode(*one_joint(41.7, 22.9))
    hm4, hm2 = encoded['heatmaps']
    assert hm4.shape == (3, 12, 16) and hm2.shape == (3, 24, 32)
    assert hm4.dtype == np.float32
    # stride 4: (10.43, 5.73) -> (10, 5); stride 2: (20.85, 11.45) -> (20, 11)
    assert np.unravel_index(hm4[1].argmax(), hm4[1].shape) == (5, 10)
    assert np.unravel_index(hm2[1].argmax(), hm2[1].shape) == (11, 20)
    assert hm4[1, 5, 10] == 1.0 and hm2[1, 11, 20] == 1.0
    # sigma 2 at both resolutions, centred on the integer position
    assert hm4[1, 6, 12] == pytest.approx(gaussian(2, 1))
    assert hm2[1, 11 + 7, 20 - 7] == pytest.approx(gaussian(7, 7))
    # 15 x 15 window: nothing 8 pixels away although the Gaussian is not 0
    assert hm2[1, 11, 20 + 8] == 0 and hm2[1, 11 - 8, 20] == 0
    assert np.count_nonzero(hm2[1]) == 15 * 15
    assert not hm4[[0, 2]].any() and not hm2[[0, 2]].any()


def test_window_is_clipped_at_the_border():
    hm4, _ = encode(*one_joint(1.0, 1.0))['heatmaps']
    assert hm4[1, 0, 0] == 1.0
    assert np.count_nonzero(hm4[1]) == 8 * 8  # rows/cols 0..7 of the window


def test_outside_and_invisible_joints_are_skipped():
    keypoints = np.array([[[70.0, 10.0], [10.0, -5.0], [10.0, 10.0]]])
    hm4, hm2 = encode(keypoints, [[1, 1, 0]])['heatmaps']
    assert not hm4.any() and not hm2.any()
    idx = encode(keypoints, [[1, 1, 0]])['keypoint_indices']
    assert idx[..., 1].tolist() == [[0, 0, 0]]


def test_integer_part_truncates_like_the_original():
    # x = -2 is -0.5 at stride 4: int() gives column 0, so the original kept
    # the joint there; at stride 2 it is -1 and skipped
    encoded = encode(*one_joint(-2.0, 20.0))
    hm4, hm2 = encoded['heatmaps']
    assert hm4[1, 5, 0] == 1.0
    assert not hm2.any()
    assert encoded['keypoint_indices'][0, 1].tolist() == [5 * 16 + 0, 1]


def test_people_combine_by_maximum_and_tag_indices_at_stride_4():
    keypoints = np.array([[[8.0, 8.0], [30.0, 20.0]], [[12.0, 8.0], [63.9, 47.9]]])
    encoded = encode(keypoints, [[1, 1], [1, 0]])
    hm4 = encoded['heatmaps'][0]
    # joint 0 of both people at stride 4: (2, 2) and (3, 2)
    assert hm4[0, 2, 2] == 1.0 and hm4[0, 2, 3] == 1.0
    assert hm4[0, 2, 4] == pytest.approx(max(gaussian(2, 0), gaussian(1, 0)))
    idx = encoded['keypoint_indices']
    assert idx.dtype == np.int64 and idx.shape == (2, 2, 2)
    assert idx.tolist() == [[[2 * 16 + 2, 1], [5 * 16 + 7, 1]], [[2 * 16 + 3, 1], [0, 0]]]


def test_input_size_is_required_and_checked():
    codec = HigherResolutionAssociativeEmbedding()
    keypoints, visible = one_joint(5, 5)
    with pytest.raises(ValueError, match='BottomupRandomAffine'):
        codec.encode(keypoints, visible)
    with pytest.raises(ValueError, match='not divisible'):
        codec.encode(keypoints, visible, input_size=(66, 64))


def test_registered_in_mmpose_codecs():
    codec = KEYPOINT_CODECS.build(dict(type='HigherResolutionAssociativeEmbedding', sigma=2))
    assert isinstance(codec, HigherResolutionAssociativeEmbedding)


def crowd_rle(height, width, x0, y0, x1, y1):
    """Uncompressed COCO RLE of a box, as COCO stores crowd regions (written
    by the toy-data tool)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return uncompressed_rle(mask)


def test_train_pipeline_packs_targets_masks_and_indices():
    """The config's target steps on one image: crowd (RLE) and unlabelled
    person (polygon) masked, outside of the image masked, fields packed."""
    init_default_scope('mmpose')
    codec = dict(type='HigherResolutionAssociativeEmbedding')
    steps = [
        dict(
            type='BottomupRandomAffine',
            input_size=(64, 64),
            scale_type='long',
            scale_prob=0,
            rotate_prob=0,
            shift_prob=0,
        ),
        dict(type='GenerateTarget', encoder=codec),
        dict(type='BottomupGetHeatmapMaskWithCrowd'),
        dict(type='PackPoseInputs'),
    ]
    keypoints = np.zeros((2, 17, 2), dtype=np.float32)
    keypoints[0, :, 0] = np.linspace(20, 40, 17)
    keypoints[0, :, 1] = 30
    visible = np.zeros((2, 17), dtype=np.float32)
    visible[0] = 1
    results = dict(
        img=np.zeros((32, 64, 3), dtype=np.uint8),  # wide: padded rows
        img_shape=(32, 64),
        ori_shape=(32, 64),
        keypoints=keypoints,
        keypoints_visible=visible,
        invalid_segs=[
            crowd_rle(32, 64, 0, 0, 16, 16),
            [[48.0, 16.0, 64.0, 16.0, 64.0, 32.0, 48.0, 32.0]],
        ],
        flip_indices=list(range(17)),
    )
    for step in steps:
        results = TRANSFORMS.build(step)(results)
    sample = results['data_samples']
    heatmaps = sample.gt_fields.heatmaps
    masks = sample.gt_fields.heatmap_mask
    assert [tuple(h.shape) for h in heatmaps] == [(17, 16, 16), (17, 32, 32)]
    assert [tuple(m.shape) for m in masks] == [(16, 16), (32, 32)]
    mask2 = masks[1].numpy()
    # the 64 x 32 image fills input rows 16..47, rows 8..23 at stride 2
    assert not mask2[:7].any() and not mask2[25:].any()
    assert not mask2[9:15, 0:7].any()  # crowd box (0..16, 0..16) -> masked
    assert not mask2[17:23, 25:].any()  # unlabelled person's polygon
    assert mask2[12:20, 10:20].all()  # the labelled person
    labels = sample.gt_instance_labels.keypoint_indices
    assert tuple(labels.shape) == (2, 17, 2)
    assert labels[0, :, 1].all() and not labels[1, :, 1].any()
    # joint 0 at (20, 30) in the image is (20, 46) in the input, (5, 11) at 1/4
    assert labels[0, 0].tolist() == [11 * 16 + 5, 1]
