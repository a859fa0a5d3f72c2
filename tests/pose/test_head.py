"""AEHigherResolutionHead: shapes, sizes, checkpoint names, and the test-time
aggregation (resolutions, flip, scales) against the original's formulas."""

import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

import crossformer_mm.pose  # noqa: F401  (registers the modules)
from _helpers import REPO_ROOT

FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def build_model(config):
    init_default_scope('mmpose')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def w32():
    return build_model('higherhrnet_w32_coco_512x512.py').eval()


def test_w32_output_shapes(w32):
    """Heatmaps + tags at 1/4 of the input, deconvolved heatmaps at 1/2 (a 256 input: the
    strides are the same at the config's 512, at a quarter of the cost)."""
    with torch.no_grad():
        outputs = w32.head(w32.extract_feat(torch.zeros(1, 3, 256, 256)))
    assert [tuple(o.shape) for o in outputs] == [(1, 34, 64, 64), (1, 17, 128, 128)]


def test_parameter_counts(w32):
    assert num_params(w32) == 28_645_331
    w48 = build_model('higherhrnet_w48_coco_640x640.py')
    assert num_params(w48) == 63_827_139


def test_head_keys_are_the_original_names(w32, reference_dir):
    original = {
        line.split('\t')[0]: eval(line.split('\t')[1])
        for line in open(osp.join(reference_dir, 'higherhrnet_w32_keys.txt'))
        if line.startswith(('final_layers', 'deconv_layers'))
    }
    head = {k: list(v.shape) for k, v in w32.head.state_dict().items()}
    assert head == original


def test_configurable_stages():
    head = MODELS.build(
        dict(
            type='AEHigherResolutionHead',
            in_channels=8,
            num_keypoints=3,
            tag_dim=2,
            deconv_out_channels=(6, 5),
            deconv_kernel_sizes=(4, 2),
            num_basic_blocks=1,
            cat_output=(True, False),
            final_conv_kernel=3,
        )
    )
    outputs = head((torch.zeros(2, 8, 5, 7),))
    assert [tuple(o.shape) for o in outputs] == [(2, 9, 5, 7), (2, 3, 10, 14), (2, 3, 20, 28)]
    assert head.deconv_layers[0][0][0].in_channels == 8 + 9
    assert head.deconv_layers[1][0][0].in_channels == 6
    with pytest.raises(ValueError, match='one entry per deconv stage'):
        MODELS.build(
            dict(
                type='AEHigherResolutionHead',
                in_channels=8,
                deconv_out_channels=(6,),
                cat_output=(True, False),
            )
        )


class FixedOutputs:
    """Stands in for ``head.forward``: returns preset outputs per call."""

    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, feats):
        return self.outputs[feats]


def original_scale_maps(out, out_flip, size):
    """The original get_multi_stage_outputs + aggregate_results (one scale):
    heatmaps (1, K, H, W), tags list of (1, K, H, W)."""
    k = 17
    up = F.interpolate(out[0], size=out[1].shape[2:], mode='bilinear', align_corners=False)
    heatmaps = [(up[:, :k] + out[1][:, :k]) / 2]
    tags = [up[:, k:]]
    up_f = torch.flip(
        F.interpolate(
            out_flip[0], size=out_flip[1].shape[2:], mode='bilinear', align_corners=False
        ),
        [3],
    )
    heatmaps.append((up_f[:, :k][:, FLIP] + torch.flip(out_flip[1], [3])[:, :k][:, FLIP]) / 2)
    tags.append(up_f[:, k:][:, FLIP])

    def project(x):
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)

    heatmaps = [project(h) for h in heatmaps]
    tags = [project(t) for t in tags]
    return (heatmaps[0] + heatmaps[1]) / 2.0, tags


def random_outputs(seed, h, w):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.rand(1, 34, h // 4, w // 4, generator=gen),
        torch.rand(1, 17, h // 2, w // 2, generator=gen),
    ]


def test_flip_and_multiscale_aggregation_matches_the_original(monkeypatch, w32):
    head = w32.head
    size = (64, 96)  # main-scale input (h, w); scales 2 and 0.5 too
    outputs = {
        'orig1': random_outputs(0, *size),
        'flip1': random_outputs(1, *size),
        'orig2': random_outputs(2, 128, 192),
        'flip2': random_outputs(3, 128, 192),
        'orig05': random_outputs(4, 32, 48),
        'flip05': random_outputs(5, 32, 48),
    }
    monkeypatch.setattr(head, 'forward', FixedOutputs(outputs))
    sample = PoseDataSample(metainfo=dict(img_shape=size, flip_indices=FLIP, aug_scales=[2.0, 0.5]))
    feats = [['orig1', 'flip1'], ['orig2', 'flip2'], ['orig05', 'flip05']]
    preds, fields = head.predict(
        feats, [sample], test_cfg=dict(flip_test=True, multiscale_test=True, output_heatmaps=True)
    )

    h1, tags = original_scale_maps(outputs['orig1'], outputs['flip1'], size)
    h2, _ = original_scale_maps(outputs['orig2'], outputs['flip2'], size)
    h05, _ = original_scale_maps(outputs['orig05'], outputs['flip05'], size)
    expected = (h2 + h1 + h05) / 3.0  # the original sums scales 2, 1, 0.5
    torch.testing.assert_close(fields[0].heatmaps, expected[0], rtol=0, atol=0)

    # decoding ran on those maps with the two tag maps stacked
    keypoints, scores, person_scores = head.decoder.batch_decode(expected, torch.stack(tags, dim=4))
    np.testing.assert_array_equal(preds[0].keypoints, keypoints[0])
    np.testing.assert_array_equal(preds[0].bbox_scores, person_scores[0])
    # the boxes (which let mmpose's inferencer report the person scores)
    # are the extents of each person's found joints
    assert preds[0].bboxes.shape == (len(keypoints[0]), 4) and len(keypoints[0]) > 0
    for box, kpts, kpt_scores in zip(preds[0].bboxes, keypoints[0], scores[0]):
        found = kpts[kpt_scores > 0]
        np.testing.assert_array_equal(box, [*found.min(0), *found.max(0)])


def test_keypoint_boxes_of_people_without_found_joints_are_zero():
    from crossformer_mm.pose.head import keypoint_boxes

    keypoints = np.array([[[1.0, 2.0], [5.0, 3.0]], [[7.0, 7.0], [9.0, 9.0]]], dtype=np.float32)
    boxes = keypoint_boxes(keypoints, np.array([[0.5, 0.2], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_array_equal(boxes, [[1, 2, 5, 3], [0, 0, 0, 0]])
    assert keypoint_boxes(np.zeros((0, 17, 2)), np.zeros((0, 17))).shape == (0, 4)


def test_single_scale_without_flip_uses_output_tags(monkeypatch, w32):
    head = w32.head
    outputs = {'x': random_outputs(6, 64, 64)}
    monkeypatch.setattr(head, 'forward', FixedOutputs(outputs))
    sample = PoseDataSample(metainfo=dict(img_shape=(64, 64)))
    captured = {}

    def capture(heatmaps, tags):
        captured.update(heatmaps=heatmaps, tags=tags)
        return [np.zeros((0, 17, 2))], [np.zeros((0, 17))], [np.zeros(0)]

    monkeypatch.setattr(head.decoder, 'batch_decode', capture)
    head.predict('x', [sample], test_cfg=dict(flip_test=False))
    out0, out1 = outputs['x']
    up = F.interpolate(out0, size=(32, 32), mode='bilinear', align_corners=False)
    expected = F.interpolate(
        (up[:, :17] + out1) / 2, size=(64, 64), mode='bilinear', align_corners=False
    )
    torch.testing.assert_close(captured['heatmaps'], expected, rtol=0, atol=0)
    assert tuple(captured['tags'].shape) == (1, 17, 64, 64, 1)


def test_predict_needs_flip_indices_and_equal_sizes(w32):
    head = w32.head
    with pytest.raises(ValueError, match='flip_indices'):
        head.predict(
            [(torch.zeros(1, 32, 8, 8),)] * 2,
            [PoseDataSample(metainfo=dict(img_shape=(32, 32)))],
            test_cfg=dict(flip_test=True),
        )
    with pytest.raises(ValueError, match='batch_size=1'):
        head.predict(
            (torch.zeros(2, 32, 8, 8),),
            [
                PoseDataSample(metainfo=dict(img_shape=(32, 32))),
                PoseDataSample(metainfo=dict(img_shape=(32, 64))),
            ],
        )
