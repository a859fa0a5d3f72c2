"""Converter of the original HigherHRNet checkpoints (COCO 17 joints and
CrowdPose 14 joints), checked on the recorded output of the original model;
mmpose 0.x checkpoints (``backbone.*`` / ``keypoint_head.*``) load unconverted."""

import os.path as osp
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmpose.registry import MODELS

from _helpers import REPO_ROOT, run
from crossformer_mm.pose import convert

CONFIG = osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_coco_512x512.py')
CROWDPOSE_CONFIG = osp.join(REPO_ROOT, 'configs', 'higherhrnet_w32_crowdpose_512x512.py')


@pytest.fixture(scope='module')
def converter():
    return convert


def build(config: str):
    init_default_scope('mmpose')
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def model():
    return build(CONFIG)


@pytest.fixture(scope='module')
def fixture_data(reference_dir):
    return np.load(osp.join(reference_dir, 'fixtures', 'higherhrnet_w32_256.npz'))


def head_outputs(model, data):
    with torch.no_grad():
        return [
            out.numpy() for out in model.head(model.extract_feat(torch.from_numpy(data['input'])))
        ]


def test_keys_split_into_backbone_and_head(converter, original_state_dict):
    converted = converter.convert_state_dict(original_state_dict)
    assert len(converted) == len(original_state_dict) == 1810
    head = [k for k in converted if k.startswith('head.')]
    assert len(head) == 58
    assert 'head.deconv_layers.0.1.0.bn2.running_var' in converted
    assert all(k.startswith(('head.', 'backbone.')) for k in converted)


def test_converted_weights_reproduce_the_original_outputs(
    converter, original_state_dict, model, reference_dir
):
    result = model.load_state_dict(converter.convert_state_dict(original_state_dict), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    data = np.load(osp.join(reference_dir, 'fixtures', 'higherhrnet_w32_256.npz'))
    with torch.no_grad():
        outputs = model.head(model.extract_feat(torch.from_numpy(data['input'])))
    for output, name in zip(outputs, ('out0', 'out1')):
        reference = data[name]
        assert output.shape == reference.shape
        error = np.abs(output.numpy() - reference).max()
        assert error / np.abs(reference).max() < 5e-6, (name, error)


def test_fp16_wrapper_checkpoint_is_unwrapped_and_cast(converter, original_state_dict):
    """640 files: ``1.`` prefix (fp16 wrapper) and half tensors."""
    wrapped = {
        f'1.{k}': v.half() if v.is_floating_point() else v for k, v in original_state_dict.items()
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
def test_command_line_writes_a_loadable_checkpoint(converter, original_state_dict, tmp_path, model):
    src, dst = tmp_path / 'original.pth', tmp_path / 'converted.pth'
    torch.save({f'1.{k}': v for k, v in original_state_dict.items()}, src)
    out = run(
        [sys.executable, 'tools/convert/higherhrnet_official_to_mmpose.py', str(src), str(dst)]
    )
    assert '28,645,331 weights' in out
    assert '17 joints (coco' in out
    checkpoint = _load_checkpoint(str(dst), map_location='cpu')  # the safe loader
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    meta = checkpoint['meta']['dataset_meta']
    assert meta['dataset_name'] == 'coco' and meta['num_keypoints'] == 17


def test_training_checkpoint_of_the_original_code_is_unwrapped(converter, original_state_dict):
    """The original training code's ``checkpoint.pth`` (DDP around the fp16
    wrapper: ``module.1.`` keys under ``state_dict``, the model's name under
    ``model``) goes through the package's one unwrap, then the ``1.`` prefix."""
    checkpoint = {
        'epoch': 300,
        'model': 'pose_higher_hrnet',
        'best_perf': 0.67,
        'state_dict': {f'module.1.{k}': v for k, v in original_state_dict.items()},
        'optimizer': {'state': {}, 'param_groups': []},
    }
    original = converter.original_state_dict(checkpoint)
    assert list(original) == list(original_state_dict)
    assert all(original[k] is v for k, v in original_state_dict.items())


def test_other_checkpoints_are_rejected(converter):
    with pytest.raises(KeyError, match='not an original HigherHRNet'):
        converter.convert_state_dict({'conv1.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='expected a state dict'):
        converter.convert_state_dict([torch.zeros(1)])


# CrowdPose (14 joints) ----------------------------------------------------------
KEPT_OUT0 = [*range(14), *range(17, 31)]  # the 14 joints' final_layers.0 channels


def test_crowdpose_checkpoint_converts_and_matches_the_coco_model(
    converter, crowdpose_original, fixture_data
):
    crowd, reference = crowdpose_original
    assert crowd['final_layers.0.weight'].shape[0] == 28
    assert crowd['final_layers.1.weight'].shape[0] == 14
    converted = converter.convert_state_dict(
        {f'1.{k}': v.half() if v.is_floating_point() else v for k, v in crowd.items()}
    )
    assert converter.head_layout(converted) == (14, 1)
    crowd_model = build(CROWDPOSE_CONFIG)
    result = crowd_model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    coco_model = build(CONFIG)
    coco_model.load_state_dict(
        converter.convert_state_dict(
            {k: v.half().float() if v.is_floating_point() else v for k, v in reference.items()}
        )
    )
    crowd_out = head_outputs(crowd_model, fixture_data)
    coco_out = head_outputs(coco_model, fixture_data)
    assert crowd_out[0].shape == (1, 28, 64, 64) and crowd_out[1].shape == (1, 14, 128, 128)
    np.testing.assert_allclose(crowd_out[0], coco_out[0][:, KEPT_OUT0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(crowd_out[1], coco_out[1][:, :14], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_command_line_converts_a_crowdpose_checkpoint(crowdpose_original, tmp_path):
    src, dst = tmp_path / 'crowdpose_original.pth', tmp_path / 'converted.pth'
    crowd, _ = crowdpose_original
    torch.save(crowd, src)
    out = run(
        [sys.executable, 'tools/convert/higherhrnet_official_to_mmpose.py', str(src), str(dst)]
    )
    assert '14 joints (crowdpose' in out
    model = build(CROWDPOSE_CONFIG)
    checkpoint = load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    meta = checkpoint['meta']['dataset_meta']
    assert meta['dataset_name'] == 'crowdpose' and meta['num_keypoints'] == 14
    assert meta['flip_indices'] == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]


def test_head_layout_rejects_inconsistent_heads(converter, original_state_dict):
    broken = dict(original_state_dict)
    broken['final_layers.0.weight'] = broken['final_layers.0.weight'][:30]
    with pytest.raises(ValueError, match='final_layers.0 has 30 outputs'):
        converter.head_layout(broken)
    with pytest.raises(ValueError, match='no released HigherHRNet has 16 joints'):
        converter.dataset_meta_for(16)


# mmpose 0.x checkpoints -----------------------------------------------------------
def mmpose0x_state_dict(original_state_dict) -> OrderedDict:
    """The layout of mmpose 0.x ``AssociativeEmbedding`` checkpoints: the
    HRNet under ``backbone.``, ``AEHigherResolutionHead`` under
    ``keypoint_head.`` (its ``final_layers`` / ``deconv_layers`` are the
    original's), with the module-version metadata that ``state_dict()``
    records (version 1: no ``_version`` in mmpose 0.x's model)."""
    state_dict = OrderedDict(
        (
            ('keypoint_head.' if k.startswith(('final_layers.', 'deconv_layers.')) else 'backbone.')
            + k,
            v,
        )
        for k, v in original_state_dict.items()
    )
    state_dict._metadata = OrderedDict({'': {'version': 1}})
    return state_dict


def test_mmpose0x_checkpoint_loads_as_it_is(
    original_state_dict, fixture_data, model, converter, tmp_path
):
    path = tmp_path / 'higher_hrnet32_coco_512x512-8ae85183.pth'
    torch.save(
        {
            'meta': {'mmpose_version': '0.29.0', 'epoch': 300, 'iter': 292800},
            'state_dict': mmpose0x_state_dict(original_state_dict),
        },
        path,
    )
    loaded = build(CONFIG)
    # no key left over or missing
    load_checkpoint(loaded, str(path), map_location='cpu', strict=True)
    model.load_state_dict(converter.convert_state_dict(original_state_dict), strict=True)
    for out_0x, out_converted, name in zip(
        head_outputs(loaded, fixture_data), head_outputs(model, fixture_data), ('out0', 'out1')
    ):
        np.testing.assert_array_equal(out_0x, out_converted)
        reference = fixture_data[name]
        assert np.abs(out_0x - reference).max() / np.abs(reference).max() < 5e-6
