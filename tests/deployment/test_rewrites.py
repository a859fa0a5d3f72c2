"""The export-time replacements that the deploy configs register with mmdeploy
(crossformer_mm.deployment.rewrites), tested without mmdeploy: each replaced function
exists with the replacement's parameters, the replacement gives the eager numbers, and
the graph it traces is right at sizes it was not traced at."""

import importlib
import inspect

import pytest
import torch
from mmengine.config import Config
from mmseg.models.utils.wrappers import Upsample
from torch import nn

from _helpers import REPO_ROOT
from crossformer_mm.deployment import export_onnx, ort_session, run_ort
from crossformer_mm.deployment.rewrites import (
    MMDEPLOY_REWRITES,
    lsda_attention_for_export,
    upsample_forward_for_export,
)
from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers import LSDA


def resolve(func_name: str):
    """What mmdeploy's ``func_name`` names: a module path, then attributes."""
    parts = func_name.split('.')
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module('.'.join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            target = getattr(target, attr)
        return target
    raise ImportError(func_name)


@pytest.mark.parametrize('func_name', sorted(MMDEPLOY_REWRITES))
def test_each_replaced_function_exists_with_the_replacements_parameters(func_name):
    original = inspect.signature(resolve(func_name)).parameters
    replacement = inspect.signature(MMDEPLOY_REWRITES[func_name]).parameters
    assert list(original) == list(replacement), (list(original), list(replacement))


def test_the_deploy_configs_register_the_rewrites():
    for name in (
        'detection_onnxruntime_dynamic.py',
        'segmentation_onnxruntime_dynamic.py',
        'pose-bottomup_onnxruntime_static-512x512.py',
    ):
        cfg = Config.fromfile(f'{REPO_ROOT}/configs/deploy/{name}', import_custom_modules=False)
        assert cfg.custom_imports.imports == ['crossformer_mm.deployment.mmdeploy_rewrites']


@pytest.mark.parametrize('lda_mode', ['iclr', 'windowed'])
def test_the_attention_replacement_gives_the_eager_numbers(lda_mode, monkeypatch):
    torch.manual_seed(0)
    arch = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
    model = CrossFormer(arch=arch, lda_mode=lda_mode, drop_path_rate=0.0).eval()
    x = torch.randn(2, 3, 256, 320)
    with torch.no_grad():
        expected = model(x)
        monkeypatch.setattr(LSDA, '_sdpa', lsda_attention_for_export)
        called = []
        monkeypatch.setattr(
            torch.nn.functional,
            'scaled_dot_product_attention',
            lambda *args, **kwargs: called.append(1),
        )
        replaced = model(x)
    assert not called  # the replacement never reaches mmdeploy's SDPA rewrite
    for out, ref in zip(replaced, expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


class UpsampleNet(nn.Module):
    """A conv and mmseg's Upsample (x2, bilinear), as in Semantic FPN's head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = Upsample(scale_factor=2, mode='bilinear', align_corners=False)

    def forward(self, x: torch.Tensor) -> tuple:
        return (self.up(self.conv(x)),)


def test_the_upsample_replacement_traces_a_graph_right_at_every_size(tmp_path):
    """Exported as it is, mmseg's Upsample fixes its output size at the traced one;
    export_onnx, which exports it through the replacement, is right at every size."""
    torch.manual_seed(0)
    net = UpsampleNet().eval()
    sizes = [(32, 48), (40, 56), (64, 64)]
    inputs = [torch.randn(1, 3, *size) for size in sizes]
    with torch.no_grad():
        expected = [net(x)[0] for x in inputs]

    def at_every_size(path: str) -> list:
        session = ort_session(path)
        return [torch.from_numpy(run_ort(session, x)[0]) for x in inputs]

    stock = str(tmp_path / 'stock.onnx')
    torch.onnx.export(
        net,
        (inputs[0],),
        stock,
        dynamo=False,
        input_names=['input'],
        output_names=['output0'],
        dynamic_axes={'input': {2: 'height', 3: 'width'}, 'output0': {2: 'h', 3: 'w'}},
    )
    stock_outputs = at_every_size(stock)
    assert stock_outputs[0].shape == expected[0].shape
    assert stock_outputs[1].shape != expected[1].shape  # the traced size, baked in
    ours = str(tmp_path / 'ours.onnx')
    export_onnx(net, inputs[0], ours, dynamic=True, exporter='torchscript')
    for out, ref in zip(at_every_size(ours), expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert Upsample.forward is not upsample_forward_for_export  # restored after the export
