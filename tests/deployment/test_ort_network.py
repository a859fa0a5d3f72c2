"""``tools/test.py --onnx``'s splice (crossformer_mm.deployment.ort_network): the model's
own test-time code (``test_step``: preprocessing, decoding, NMS, rescaling) with its network
in ONNX Runtime gives PyTorch's predictions; a model whose network is not one graph ending
at a head is refused with the reason."""

import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config

from _helpers import REPO_ROOT
from crossformer_mm.deployment import (
    Result,
    TensorOutputs,
    build_model,
    export_onnx,
    min_dynamic_size,
    ort_session,
    run_network_in_onnx_runtime,
)
from deployment.test_models_onnx import toy_model


@pytest.mark.slow  # an export and three predictions: about 20 s
def test_retinanet_test_step_in_onnx_runtime_equals_pytorch(tmp_path):
    model = toy_model('retinanet')
    path = str(tmp_path / 'retinanet.onnx')
    size = min_dynamic_size(model.backbone)
    wrapped = TensorOutputs(model).eval()
    export_onnx(
        wrapped, torch.randn(1, 3, size, size + 64), path, exporter='torchscript', min_size=size
    )
    spliced = run_network_in_onnx_runtime(copy.deepcopy(model), ort_session(path))
    rng = np.random.default_rng(0)
    for h, w in ((256, 320), (300, 452), (320, 448)):
        image = torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8))
        # resized by 0.8 from an original image, as the test pipeline records it
        meta = dict(img_shape=(h, w), ori_shape=(h * 5 // 4, w * 5 // 4), scale_factor=(0.8, 0.8))
        with torch.no_grad():
            expected, ours = (
                m.test_step(dict(inputs=[image], data_samples=[DetDataSample(metainfo=meta)]))[0]
                for m in (model, spliced)
            )
        expected, ours = expected.pred_instances, ours.pred_instances
        assert len(expected) > 0
        # as a set: boxes whose scores tie within 1e-4 may come in either order (NMS sorts)
        ours, expected = (
            Result('boxes', {k: getattr(p, k).numpy() for k in ('bboxes', 'scores', 'labels')})
            for p in (ours, expected)
        )
        assert ours.equals(expected), (h, w, ours.summary, expected.summary)


def test_models_without_one_head_graph_are_refused():
    with pytest.raises(ValueError, match='two-stage detector'):
        run_network_in_onnx_runtime(toy_model('mask_rcnn'), session=None)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/dino-5scale_crossformer-s_8xb2-12e_coco.py'))
    cfg.model.backbone.init_cfg = None
    with pytest.raises(ValueError, match='takes more than features'):
        run_network_in_onnx_runtime(build_model(cfg), session=None)
