"""Whole models through tools/deployment's package code (crossformer_mm.deployment):
a toy-width model of each task exported to ONNX (raw outputs), run by ONNX Runtime,
equal to PyTorch in its raw outputs and after the PyTorch model's post-processing."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from _helpers import REPO_ROOT
from crossformer_mm.deployment import (
    TensorOutputs,
    build_model,
    compare,
    export_onnx,
    flatten_outputs,
    non_standard_ops,
    ort_session,
    postprocess,
    preprocess,
    run_ort,
)

pytest.importorskip('onnxruntime', reason='pip install onnx onnxruntime onnxscript')

TOY_ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
TOY_CHANNELS = [32, 64, 128, 256]

# config, the toy overrides, the kind of post-processed result
MODELS = {
    'retinanet': (
        'configs/retinanet_crossformer_s_fpn_1x_coco.py',
        # every anchor scored: boxes to compare with random weights
        {'model.neck.in_channels': TOY_CHANNELS, 'model.test_cfg.score_thr': 0.0},
        'boxes',
    ),
    'semantic_fpn': (
        'configs/fpn_crossformer_s_512x512_80k_ade20k.py',
        {'model.neck.in_channels': TOY_CHANNELS},
        'label_map',
    ),
    'classifier': (
        'configs/crossformer-s_8xb128_in1k.py',
        {'model.head.in_channels': TOY_CHANNELS[-1]},
        'class',
    ),
}


def toy_model(name: str):
    config, options, _ = MODELS[name]
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.merge_from_dict(options)
    cfg.model.backbone.arch = TOY_ARCH
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.drop_path_rate = 0.0
    torch.manual_seed(0)
    model = build_model(cfg)
    for p in model.parameters():  # away from the constant initialisations
        p.data.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.mark.slow  # an export of a whole model takes about a minute
@pytest.mark.parametrize('name', sorted(MODELS))
def test_onnx_runtime_equals_pytorch(name, tmp_path):
    model = toy_model(name)
    image = np.random.default_rng(0).integers(0, 256, (256, 320, 3), dtype=np.uint8)
    inputs, _ = preprocess(model, image)
    assert inputs.shape[-2:] == (256, 320) and inputs.dtype == torch.float32
    path = str(tmp_path / f'{name}.onnx')
    wrapped = TensorOutputs(model)
    export_onnx(wrapped, inputs, path, dynamic=False)
    assert non_standard_ops(path) == []
    session = ort_session(path)
    errors = compare(session, wrapped, inputs)['relative_error']
    assert max(errors) <= 1e-4, errors
    outputs = [torch.from_numpy(o) for o in run_ort(session, inputs)]
    with torch.no_grad():
        references = flatten_outputs(model(inputs, mode='tensor'))
    ours, expected = postprocess(model, outputs, inputs), postprocess(model, references, inputs)
    assert ours.kind == expected.kind == MODELS[name][2]
    assert ours.equals(expected), (ours.summary, expected.summary)
