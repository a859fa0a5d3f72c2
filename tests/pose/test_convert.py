"""Converter of the original HigherHRNet checkpoints, checked on the
recorded output of the original model."""

import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS

from crossformer_mm.pose import convert

from _helpers import REPO_ROOT, run

CONFIG = osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_coco_512x512.py')


@pytest.fixture(scope='module')
def converter():
    return convert


@pytest.fixture(scope='module')
def original_state_dict(reference_dir, deterministic_weights):
    """The original W32 layout with formula weights (BN statistics too);
    integer buffers as constructed (0)."""
    rows = [
        line.rstrip('\n').split('\t')
        for line in open(osp.join(reference_dir, 'higherhrnet_w32_keys.txt'))
        if not line.startswith('#')
    ]
    floats = deterministic_weights.deterministic_state_dict({
        key: eval(shape)
        for key, shape, dtype, _ in rows if dtype.startswith('float')
    })
    return {key: floats.get(key, torch.tensor(0)) for key, *_ in rows}


@pytest.fixture(scope='module')
def model():
    init_default_scope('mmpose')
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


def test_keys_split_into_backbone_and_head(converter, original_state_dict):
    converted = converter.convert_state_dict(original_state_dict)
    assert len(converted) == len(original_state_dict) == 1810
    head = [k for k in converted if k.startswith('head.')]
    assert len(head) == 58
    assert 'head.deconv_layers.0.1.0.bn2.running_var' in converted
    assert all(k.startswith(('head.', 'backbone.')) for k in converted)


def test_converted_weights_reproduce_the_original_outputs(
        converter, original_state_dict, model, reference_dir):
    result = model.load_state_dict(
        converter.convert_state_dict(original_state_dict), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    data = np.load(
        osp.join(reference_dir, 'fixtures', 'higherhrnet_w32_256.npz'))
    with torch.no_grad():
        outputs = model.head(model.extract_feat(torch.from_numpy(
            data['input'])))
    for output, name in zip(outputs, ('out0', 'out1')):
        reference = data[name]
        assert output.shape == reference.shape
        error = np.abs(output.numpy() - reference).max()
        assert error / np.abs(reference).max() < 5e-6, (name, error)


def test_fp16_wrapper_checkpoint_is_unwrapped_and_cast(converter,
                                                       original_state_dict):
    """640 files: ``1.`` prefix (fp16 wrapper) and half tensors."""
    wrapped = {
        f'1.{k}': v.half() if v.is_floating_point() else v
        for k, v in original_state_dict.items()
    }
    converted = converter.convert_state_dict({'state_dict': wrapped})
    reference = converter.convert_state_dict(original_state_dict)
    assert list(converted) == list(reference)
    for key, value in converted.items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, reference[key].half().float())
        else:
            assert value.dtype == reference[key].dtype


@pytest.mark.slow
def test_command_line_writes_a_loadable_checkpoint(converter,
                                                   original_state_dict,
                                                   tmp_path, model):
    src, dst = tmp_path / 'original.pth', tmp_path / 'converted.pth'
    torch.save({f'1.{k}': v for k, v in original_state_dict.items()}, src)
    out = run([sys.executable, 'tools/convert/higherhrnet_official_to_mmpose.py', str(src), str(dst)])
    assert '28,645,331 weights' in out
    checkpoint = torch.load(dst, weights_only=True)
    model.load_state_dict(checkpoint['state_dict'], strict=True)


def test_other_checkpoints_are_rejected(converter):
    with pytest.raises(KeyError, match='not an original HigherHRNet'):
        converter.convert_state_dict({'conv1.weight': torch.zeros(1)})
