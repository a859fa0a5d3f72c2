"""Whole models through tools/deployment's package code (crossformer_mm.deployment):
a toy-width model of each task exported to ONNX (raw outputs; TorchScript exporter, once
with dynamic batch, height and width, or at each size where the model's code has static
sizes), run by ONNX Runtime at three input sizes, equal to PyTorch in its raw outputs and
after the PyTorch model's post-processing at each of them. Two-stage detectors (Mask R-CNN,
Cascade Mask R-CNN) as their chain of three graphs (crossformer_mm.deployment.two_stage)."""

import os.path as osp

import numpy as np
import onnxruntime  # noqa: F401  (the runtime under test: installed by both stacks)
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmseg.models.utils.wrappers import Upsample
from torch import nn

from _helpers import REPO_ROOT
from crossformer_mm.deployment import (
    RoIStages,
    TensorOutputs,
    build_model,
    chain_errors,
    chain_paths,
    compare,
    export_onnx,
    export_two_stage,
    find_backbone,
    is_two_stage,
    min_dynamic_size,
    non_standard_ops,
    ort_session,
    postprocess,
    preprocess,
    run_ort,
    static_size_modules,
)
from crossformer_mm.deployment.rewrites import traceable_roi_extraction
from crossformer_mm.deployment.two_stage import feature_levels, instances_result

TOY_ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
TOY_CHANNELS = [32, 64, 128, 256]
TOY_HRNET = dict(
    stage1=dict(
        num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1,), num_channels=(16,)
    ),
    stage2=dict(
        num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1), num_channels=(8, 16)
    ),
    stage3=dict(
        num_modules=1,
        num_branches=3,
        block='BASIC',
        num_blocks=(1, 1, 1),
        num_channels=(8, 16, 32),
    ),
    stage4=dict(
        num_modules=1,
        num_branches=4,
        block='BASIC',
        num_blocks=(1, 1, 1, 1),
        num_channels=(8, 16, 32, 64),
        multiscale_output=False,
    ),
)
# Exported at the first size, run at all three: above the dynamic graph's minimum side
# (min_dynamic_size: 256), the last one not a multiple of 32 (the detector's preprocessing
# pads it to 288x384; the segmentor and the classifier take it as it is).
SIZES = ((256, 320), (320, 448), (288, 360))
# HigherHRNet's test pipeline (ResizeAlignMultiScale) resizes every image to multiples of
# 64, which HRNet's branches need (its fusion upsamples by exactly 2**k).
POSE_SIZES = ((256, 320), (320, 448), (384, 576))

# Two-stage detectors with random weights: every class score kept (boxes to compare), 300
# proposals (a short test).
TWO_STAGE_TEST_CFG = {'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rpn.max_per_img': 300}
TWO_STAGE = ('cascade_mask_rcnn', 'mask_rcnn')
TOY_ROI_WIDTH = 64  # the neck's, the RPN's and the RoI heads' channels of the toy two-stage

# config, the toy overrides, the kind of post-processed result, the sizes
MODELS = {
    'retinanet': (
        'configs/retinanet_crossformer_s_fpn_1x_coco.py',
        # every anchor scored: boxes to compare with random weights
        {'model.neck.in_channels': TOY_CHANNELS, 'model.test_cfg.score_thr': 0.0},
        'boxes',
        SIZES,
    ),
    'mask_rcnn': (
        # the chain of three graphs (TWO_STAGE); result: the detections with masks
        'configs/mask_rcnn_crossformer_s_fpn_1x_coco.py',
        {'model.neck.in_channels': TOY_CHANNELS, **TWO_STAGE_TEST_CFG},
        'boxes',
        SIZES,
    ),
    'cascade_mask_rcnn': (
        'configs/cascade_mask_rcnn_crossformer_s_fpn_ms-3x_coco.py',
        {'model.neck.in_channels': TOY_CHANNELS, **TWO_STAGE_TEST_CFG},
        'boxes',
        SIZES,
    ),
    'semantic_fpn': (
        # exported statically at each size (STATIC_ONLY)
        'configs/fpn_crossformer_s_512x512_80k_ade20k.py',
        {'model.neck.in_channels': TOY_CHANNELS},
        'label_map',
        SIZES,
    ),
    'higherhrnet': (
        # the published HigherHRNet-W32 recipe (HRNet backbone), at toy widths
        'configs/higherhrnet_w32_coco_512x512.py',
        {
            'model.head.in_channels': 8,
            'model.head.deconv_out_channels': (8,),
            'model.head.num_basic_blocks': 1,
            # every candidate joint kept: people to compare with random weights
            'model.head.decoder.decode_keypoint_thr': -1e9,
        },
        'keypoints',
        POSE_SIZES,
    ),
    'classifier': (
        'configs/crossformer-s_8xb128_in1k.py',
        {'model.head.in_channels': TOY_CHANNELS[-1]},
        'class',
        SIZES,
    ),
}


def toy_model(name: str):
    config, options, _, _ = MODELS[name]
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.merge_from_dict(options)
    backbone = cfg.model.backbone
    if backbone.type == 'HRNet':
        backbone.extra = TOY_HRNET
    else:
        backbone.arch = TOY_ARCH
        backbone.drop_path_rate = 0.0
    backbone.init_cfg = None
    if 'roi_head' in cfg.model:
        _toy_roi_widths(cfg.model)
    torch.manual_seed(0)
    model = build_model(cfg)
    for p in model.parameters():  # away from the constant initialisations
        p.data.add_(torch.randn_like(p) * 0.02)
    return model


def _toy_roi_widths(model_cfg) -> None:
    width = TOY_ROI_WIDTH
    model_cfg.neck.out_channels = width
    model_cfg.rpn_head.in_channels = model_cfg.rpn_head.feat_channels = width
    roi_head = model_cfg.roi_head
    for key in ('bbox_roi_extractor', 'mask_roi_extractor', 'bbox_head', 'mask_head'):
        parts = roi_head[key] if isinstance(roi_head[key], list) else [roi_head[key]]
        for part in parts:
            if key.endswith('extractor'):
                part.out_channels = width
            else:
                part.in_channels = part.conv_out_channels = width
                if 'fc_out_channels' in part or part.type.endswith('BBoxHead'):
                    part.fc_out_channels = 4 * width


@pytest.mark.slow  # a whole model exported and run at three sizes: 10-60 s
@pytest.mark.parametrize('name', sorted(set(MODELS) - set(TWO_STAGE)))
def test_onnx_runtime_equals_pytorch_at_three_sizes(name, tmp_path):
    model = toy_model(name)
    _, _, kind, sizes = MODELS[name]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    wrapped = TensorOutputs(model).eval()
    backbone = find_backbone(model)
    min_size = min_dynamic_size(backbone) if backbone is not None else 32
    dynamic = True
    path = str(tmp_path / f'{name}.onnx')
    session = None
    for (h, w), image in zip(sizes, images):
        inputs, _ = preprocess(model, image)
        padded = (h, -(-w // 32) * 32) if type(model).__module__.startswith('mmdet') else (h, w)
        assert tuple(inputs.shape[-2:]) == padded and inputs.dtype == torch.float32
        if session is None or not dynamic:  # dynamic: exported once, at the first size
            export_onnx(wrapped, inputs, path, dynamic, exporter='torchscript', min_size=min_size)
            assert non_standard_ops(path) == []
            session = ort_session(path)
            symbolic = [isinstance(d, str) for d in session.get_inputs()[0].shape]
            assert symbolic == [dynamic, False, dynamic, dynamic]
        errors = compare(session, wrapped, inputs)['relative_error']
        print(f'{name} {h}x{w}: max relative error {max(errors):.1e}')
        assert max(errors) <= 1e-4, (h, w, errors)
        outputs = [torch.from_numpy(o) for o in run_ort(session, inputs)]
        with torch.no_grad():
            references = list(wrapped(inputs))
        ours, expected = postprocess(model, outputs, inputs), postprocess(model, references, inputs)
        assert ours.kind == expected.kind == kind
        assert ours.equals(expected), (h, w, ours.summary, expected.summary)


def test_dynamic_export_refuses_an_upsampling_it_cannot_trace(tmp_path):
    """mmseg's Upsample by a non-integer factor computes its size as Python ints, which the
    exporters fix at the traced size; an integer factor (Semantic FPN's heads) is exported
    exactly (crossformer_mm.deployment.rewrites)."""
    assert static_size_modules(toy_model('semantic_fpn')) == []
    wrapped = TensorOutputs(
        nn.Sequential(nn.Conv2d(3, 4, 3), Upsample(scale_factor=1.5, mode='bilinear')),
        mode_tensor=False,
    )
    assert static_size_modules(wrapped) == ['model.1']
    with pytest.raises(ValueError, match='export this model at a static size'):
        export_onnx(wrapped, torch.zeros(1, 3, 256, 256), str(tmp_path / 'm.onnx'), dynamic=True)
    assert not (tmp_path / 'm.onnx').exists()


@pytest.mark.slow  # three graphs exported, the chain run at three sizes: 30-60 s
@pytest.mark.parametrize('name', TWO_STAGE)
def test_two_stage_chain_equals_pytorch_at_three_sizes(name, tmp_path):
    """Graphs 1-3 exported once (dynamic), run by ONNX Runtime at three sizes: each graph's
    raw outputs within 1e-4 of PyTorch's on the same inputs, and the detections after mmdet's
    post-processing between the graphs equal to PyTorch's chain, itself equal to
    ``model.predict`` (the same boxes and masks, exactly)."""
    model = toy_model(name)
    rng = np.random.default_rng(0)
    path = str(tmp_path / f'{name}.onnx')
    session = stages = None
    for h, w in MODELS[name][3]:
        inputs, _ = preprocess(model, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        if session is None:
            written = export_two_stage(model, inputs, path, True, 'torchscript', min_size=256)
            assert written == chain_paths(path)
            assert all(non_standard_ops(p) == [] for p in written.values())
            session, stages = ort_session(path), RoIStages.onnx(model, path)
            graph = ort_session(written['roi_head']).get_inputs()
            rois = {i.name: i.shape for i in graph}['rois']
            assert isinstance(rois[0], str) and rois[1] == 5  # any number of RoIs
        errors, ours, expected = chain_errors(model, session, stages, inputs)
        print(f'{name} {h}x{w}: ' + ', '.join(f'{k} {max(v):.1e}' for k, v in errors.items()))
        assert set(errors) == {'model', 'roi_head', 'mask_head'}
        assert all(max(v) <= 1e-4 for v in errors.values()), (h, w, errors)
        assert ours.kind == expected.kind == 'boxes' and len(expected.arrays['bboxes']) == 100
        assert ours.equals(expected), (h, w, ours.summary, expected.summary)
        print(f'  mask pixels that differ: at most {ours.mask_differences(expected).max()}')
        assert postprocess(
            model, [torch.from_numpy(o) for o in run_ort(session, inputs)], inputs, stages
        ).equals(ours, box_tolerance=0, mask_pixels=0)
        shape = tuple(inputs.shape[-2:])
        meta = dict(img_shape=shape, pad_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))
        with torch.no_grad():
            predicted = model.predict(inputs, [DetDataSample(metainfo=meta)], rescale=False)
        assert instances_result(predicted[0].pred_instances).equals(expected, 0, 0)


def test_two_stage_graph_one_and_roi_extraction():
    """Graph 1 of Mask R-CNN: the RPN head's outputs, then the maps the RoI head pools from;
    post-processing without the RoI graphs names the fix; the RoI extraction exported
    (torchvision roi_align at every level, level picked by torch.where) gives mmdet's
    numbers exactly, with a level that gets no RoI, and only within the context."""
    model = toy_model('mask_rcnn')
    assert is_two_stage(model)
    inputs = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        outputs = TensorOutputs(model)(inputs)
    levels, maps = len(model.rpn_head.prior_generator.strides), feature_levels(model)
    assert maps == 4 and len(outputs) == 2 * levels + maps
    anchors = model.rpn_head.num_base_priors
    assert outputs[0].shape == (1, anchors * model.rpn_head.cls_out_channels, 16, 16)
    assert outputs[levels].shape == (1, anchors * 4, 16, 16)
    assert [o.shape[-1] for o in outputs[2 * levels :]] == [16, 8, 4, 2]
    with pytest.raises(ValueError, match='roi_stages=RoIStages'):
        postprocess(model, list(outputs), inputs)

    torch.manual_seed(0)
    feats = [torch.randn(2, TOY_ROI_WIDTH, 64 // 2**i, 80 // 2**i) for i in range(4)]
    xy = torch.rand(40, 2) * 200
    rois = torch.cat([torch.randint(0, 2, (40, 1)).float(), xy, xy + torch.rand(40, 2) * 300], 1)
    extractor = model.roi_head.bbox_roi_extractor
    assert extractor.map_roi_levels(rois, 4).max() < 3  # the last level gets no RoI
    with torch.no_grad():
        expected = extractor(feats, rois)
        with traceable_roi_extraction():
            exported = extractor(feats, rois)
        assert torch.equal(extractor(feats, rois), expected)  # the context restores mmdet's
    assert torch.equal(exported, expected)
