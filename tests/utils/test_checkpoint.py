"""Loading released checkpoints: layouts, wrappers, prefixes, and loud mismatches."""

import pytest
import torch
from yacs.config import CfgNode

from _helpers import released_layout

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.utils.checkpoint import (CheckpointMismatchError, backbone_state_dict,
                                             load_backbone_checkpoint)


@pytest.fixture(scope='module')
def released_s(reference_dir, deterministic_weights):
    return released_layout(reference_dir, deterministic_weights)


def test_released_classification_checkpoint_loads_with_zero_surprises(tmp_path, released_s):
    state, expected_dropped = released_s
    assert len(state) == 368 and len(expected_dropped) == 28
    # a released file: {'model': ..., 'config': <yacs CfgNode>} (read by the safe
    # loader; without yacs installed: tests/utils/test_safe_load.py)
    cfg = CfgNode({'MODEL': {'NAME': 'crossformer-s'}})
    path = str(tmp_path / 'crossformer-s.pth')
    torch.save({'model': state, 'config': cfg, 'epoch': 299}, path)

    model = CrossFormer(arch='small', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    own = model.state_dict()
    for key, value in own.items():
        assert torch.equal(value, state[key]), key
    assert backbone_state_dict({'model': state})[1] == expected_dropped
    assert load_backbone_checkpoint(CrossFormer(arch='small'), path) == expected_dropped


@pytest.mark.parametrize('wrap', ['raw', 'state_dict_module_backbone', 'full_detector'])
def test_wrappers_and_prefixes(tmp_path, released_s, wrap):
    state, _ = released_s
    if wrap == 'raw':
        checkpoint = state
    elif wrap == 'state_dict_module_backbone':
        checkpoint = {'state_dict': {f'module.backbone.{k}': v for k, v in state.items()}}
    else:
        checkpoint = {'meta': {}, 'state_dict': {
            **{f'backbone.{k}': v for k, v in state.items()},
            'neck.lateral_convs.0.conv.weight': torch.zeros(256, 96, 1, 1)}}
    path = str(tmp_path / 'ckpt.pth')
    torch.save(checkpoint, path)
    model = CrossFormer(arch='small')
    dropped = load_backbone_checkpoint(model, path)
    assert torch.equal(model.patch_embed.projs[0].weight,
                       state['patch_embed.projs.0.weight'])
    if wrap == 'full_detector':
        assert 'neck.lateral_convs.0.conv.weight' in dropped


def test_crossformerpp_layout_loads(tmp_path, reference_dir, deterministic_weights):
    state, _ = released_layout(reference_dir, deterministic_weights, 'crossformerpp_s_keys.txt')
    path = str(tmp_path / 'pp.pth')
    torch.save({'state_dict': state}, path)
    model = CrossFormer(arch='pp-small', group_size=[7] * 4, crs_interval=[8, 4, 2, 1])
    assert load_backbone_checkpoint(model, path) == []


def test_missing_and_unexpected_keys_are_named(tmp_path, released_s):
    state, _ = released_s
    broken = dict(state)
    del broken['layers.1.blocks.0.mlp.fc1.weight']
    broken['layers.1.blocks.0.extra.weight'] = torch.zeros(3)
    path = str(tmp_path / 'broken.pth')
    torch.save({'model': broken}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_backbone_checkpoint(CrossFormer(arch='small'), path)
    assert 'layers.1.blocks.0.mlp.fc1.weight' in str(err.value)
    assert 'layers.1.blocks.0.extra.weight' in str(err.value)
    # strict=False loads what matches
    model = CrossFormer(arch='small')
    load_backbone_checkpoint(model, path, strict=False)
    assert torch.equal(model.layers[1].blocks[0].norm1.weight,
                       state['layers.1.blocks.0.norm1.weight'])


def test_wrong_arch_is_a_readable_error(tmp_path, released_s):
    path = str(tmp_path / 's.pth')
    torch.save({'model': released_s[0]}, path)
    with pytest.raises(CheckpointMismatchError, match='shape mismatch.*arch'):
        load_backbone_checkpoint(CrossFormer(arch='tiny'), path)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys \[layers\.2\.blocks\.'):
        load_backbone_checkpoint(CrossFormer(arch='base'), path)


def test_not_a_checkpoint_and_missing_file(tmp_path):
    path = str(tmp_path / 'list.pth')
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointMismatchError, match='expected a state dict'):
        load_backbone_checkpoint(CrossFormer(arch='small'), path)
    model = CrossFormer(arch='small', init_cfg=dict(type='Pretrained',
                                                    checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        model.init_weights()
