"""Grouping decode against the recorded original ``HeatmapParser`` output."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.structures import PoseDataSample

from crossformer_mm.pose import grouping_reference
from crossformer_mm.pose.codec import COCO_KEYPOINT_ORDER, HigherResolutionAssociativeEmbedding
from crossformer_mm.pose.grouping import HeatmapParser


@pytest.fixture(scope='module')
def fixture(reference_dir):
    data = np.load(osp.join(reference_dir, 'fixtures', 'higherhrnet_decode.npz'))
    return {k: data[k] for k in data.files}


@pytest.fixture(scope='module')
def benchmark_tool():
    return grouping_reference


def maps(fixture):
    return (torch.from_numpy(fixture['heatmaps'][0]), torch.from_numpy(fixture['tags'][0]))


def test_top_k_and_matching_are_exact(fixture):
    parser = HeatmapParser(COCO_KEYPOINT_ORDER)
    vals, locs, tags = parser.top_k(*maps(fixture))
    np.testing.assert_array_equal(vals, fixture['topk_val'][0])
    np.testing.assert_array_equal(locs, fixture['topk_loc'][0])
    np.testing.assert_array_equal(tags, fixture['topk_tag'][0])
    np.testing.assert_array_equal(parser.match(vals, locs, tags), fixture['matched'])


def test_parse_reproduces_grouped_and_scores(fixture):
    grouped, scores = HeatmapParser(COCO_KEYPOINT_ORDER).parse(*maps(fixture))
    np.testing.assert_array_equal(grouped, fixture['grouped'])
    np.testing.assert_allclose(scores, fixture['scores'], rtol=1e-6)


def test_codec_and_estimator_map_to_the_original_image(fixture):
    """codec decode, then mmpose's BottomupPoseEstimator mapping with the
    fixture's centre/scale, gives the original final_preds."""
    codec = HigherResolutionAssociativeEmbedding()
    keypoints, scores, person_scores = codec.decode((fixture['heatmaps'][0], fixture['tags'][0]))
    np.testing.assert_allclose(person_scores, fixture['scores'], rtol=1e-6)
    sample = PoseDataSample(
        metainfo=dict(
            input_size=tuple(fixture['heatmap_size'].astype(int)),
            input_center=fixture['center'],
            input_scale=fixture['scale'] * 200,
        )
    )
    pred = InstanceData(keypoints=keypoints, keypoint_scores=scores, bbox_scores=person_scores)
    # add_pred_to_datasample only reads the data samples, not the model
    [result] = BottomupPoseEstimator.add_pred_to_datasample(None, [pred], None, [sample])
    final = fixture['final_preds']
    np.testing.assert_allclose(result.pred_instances.keypoints, final[..., :2], atol=1e-3)
    np.testing.assert_array_equal(result.pred_instances.keypoint_scores, final[..., 2])


@pytest.mark.parametrize('missing', [2, 6])
def test_vectorised_refine_equals_the_loop_reference(fixture, benchmark_tool, missing):
    """With joints removed, refine fills them exactly as the original loops
    (and NMS with a 2D max-pool) do."""
    heatmaps = torch.from_numpy(
        benchmark_tool.remove_joints(fixture['heatmaps'][0], fixture['gt_xy'], missing)
    )
    tags = torch.from_numpy(fixture['tags'][0])
    parser = HeatmapParser(COCO_KEYPOINT_ORDER)
    unrefined, _ = parser.parse(heatmaps, tags, refine=False)
    grouped, scores = parser.parse(heatmaps, tags)
    assert (grouped[..., 2] > 0).sum() > (unrefined[..., 2] > 0).sum()
    loop_grouped, loop_scores = benchmark_tool.loop_parse(parser, heatmaps, tags)
    np.testing.assert_array_equal(grouped, loop_grouped)
    np.testing.assert_array_equal(scores, loop_scores)


def test_flip_tags_stack_as_tag_dimensions(fixture):
    """With two tag dimensions (flip test) matching uses their distance."""
    heatmaps, tags = maps(fixture)
    doubled = torch.cat([tags, tags], dim=3)
    grouped, _ = HeatmapParser(COCO_KEYPOINT_ORDER).parse(heatmaps, doubled)
    assert grouped.shape == (3, 17, 5)
    np.testing.assert_array_equal(grouped[..., :4], fixture['grouped'])


def test_empty_maps_give_no_people():
    codec = HigherResolutionAssociativeEmbedding()
    keypoints, scores, person_scores = codec.batch_decode(
        torch.zeros(2, 17, 64, 64), torch.zeros(2, 17, 64, 64, 1)
    )
    assert [k.shape for k in keypoints] == [(0, 17, 2)] * 2
    assert [s.shape for s in person_scores] == [(0,)] * 2


def test_parser_rejects_bad_input():
    with pytest.raises(ValueError, match='permutation'):
        HeatmapParser([0, 1, 1])
    with pytest.raises(ValueError, match='odd'):
        HeatmapParser(COCO_KEYPOINT_ORDER, nms_kernel=4)
    with pytest.raises(ValueError, match='keypoint_order has 17'):
        HeatmapParser(COCO_KEYPOINT_ORDER).parse(torch.zeros(14, 8, 8), torch.zeros(14, 8, 8, 1))
    with pytest.raises(ValueError, match=r'\(K, H, W, L\)'):
        HeatmapParser(COCO_KEYPOINT_ORDER).parse(torch.zeros(17, 8, 8), torch.zeros(17, 8, 8))
