"""Loading released checkpoints: layouts, wrappers, prefixes, and loud mismatches."""

from collections import Counter

import pytest
import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint
from yacs.config import CfgNode

from _helpers import released_layout
from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.utils.checkpoint import (
    DROPPED_CLASSIFIER,
    DROPPED_DPB_BUFFER,
    DROPPED_NOT_BACKBONE,
    CheckpointMismatchError,
    filter_checkpoint,
    load_backbone_checkpoint,
    unwrap_state_dict,
)
from crossformer_mm.utils.safe_load import model_weights


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
    assert sorted(filter_checkpoint({'model': state}).dropped) == expected_dropped
    assert load_backbone_checkpoint(CrossFormer(arch='small'), path) == expected_dropped


@pytest.mark.parametrize('wrap', ['raw', 'state_dict_module_backbone', 'full_detector'])
def test_wrappers_and_prefixes(tmp_path, released_s, wrap):
    state, _ = released_s
    if wrap == 'raw':
        checkpoint = state
    elif wrap == 'state_dict_module_backbone':
        checkpoint = {'state_dict': {f'module.backbone.{k}': v for k, v in state.items()}}
    else:
        checkpoint = {
            'meta': {},
            'state_dict': {
                **{f'backbone.{k}': v for k, v in state.items()},
                'neck.lateral_convs.0.conv.weight': torch.zeros(256, 96, 1, 1),
            },
        }
    path = str(tmp_path / 'ckpt.pth')
    torch.save(checkpoint, path)
    model = CrossFormer(arch='small')
    dropped = load_backbone_checkpoint(model, path)
    assert torch.equal(model.patch_embed.projs[0].weight, state['patch_embed.projs.0.weight'])
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
    assert torch.equal(
        model.layers[1].blocks[0].norm1.weight, state['layers.1.blocks.0.norm1.weight']
    )


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
    model = CrossFormer(
        arch='small', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'nope.pth'))
    )
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        model.init_weights()


# one filter: every accepted layout gives the same backbone keys -----------------------
def _backbone(state):
    """The released file's backbone part: no DPB index buffer, no classifier."""
    dropped = set(filter_checkpoint(state).dropped)
    return {k: v for k, v in state.items() if k not in dropped}


def _prefixed(prefix, state):
    return {prefix + k: v for k, v in state.items()}


NECK_AND_HEADS = {
    'neck.lateral_convs.0.conv.weight': torch.ones(256, 96, 1, 1),
    'rpn_head.rpn_conv.weight': torch.ones(256, 256, 3, 3),
    'roi_head.bbox_head.fc_cls.weight': torch.ones(81, 1024),
}
SEG_HEADS = {
    'decode_head.conv_seg.weight': torch.ones(150, 512, 1, 1),
    'auxiliary_head.conv_seg.weight': torch.ones(150, 256, 1, 1),
}
CLS_HEAD = {'head.norm.weight': torch.ones(768), 'head.head.weight': torch.ones(1000, 768)}

#: name -> (the checkpoint of the released state and its backbone part,
#:          why keys are dropped: counts, whether the backbone keys had a backbone. prefix)
RELEASED_DROPS = {DROPPED_DPB_BUFFER: 24, DROPPED_CLASSIFIER: 4}
LAYOUTS = {
    'raw backbone': (lambda s, b: b, {}, False),
    'raw released file': (lambda s, b: s, RELEASED_DROPS, False),
    "{'model'} released file + yacs config": (
        lambda s, b: {
            'model': s,
            'config': CfgNode({'MODEL': {'NAME': 'crossformer-s'}}),
            'epoch': 299,
        },
        RELEASED_DROPS,
        False,
    ),
    "{'state_dict'} backbone": (lambda s, b: {'meta': {'epoch': 3}, 'state_dict': b}, {}, False),
    'module. prefix, released': (
        lambda s, b: {'model': _prefixed('module.', s)},
        RELEASED_DROPS,
        False,
    ),
    'backbone. prefix': (lambda s, b: _prefixed('backbone.', b), {}, True),
    'module.backbone. prefix': (
        lambda s, b: {'state_dict': _prefixed('module.backbone.', s)},
        RELEASED_DROPS,
        True,
    ),
    'full detector, buffers in the backbone': (
        lambda s, b: {
            'meta': {'CLASSES': ('a', 'b')},
            'optimizer': {'state': {}},
            'state_dict': {**_prefixed('backbone.', s), **NECK_AND_HEADS},
        },
        {**RELEASED_DROPS, DROPPED_NOT_BACKBONE: 3},
        True,
    ),
    'full segmentor': (
        lambda s, b: {'state_dict': {**_prefixed('backbone.', b), **SEG_HEADS}},
        {DROPPED_NOT_BACKBONE: 2},
        True,
    ),
    'mmpretrain classifier': (
        lambda s, b: {'state_dict': {**_prefixed('backbone.', b), **CLS_HEAD}},
        {DROPPED_NOT_BACKBONE: 2},
        True,
    ),
}


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_filter_gives_the_same_backbone_keys_for_every_layout(layout, released_s):
    state, expected_dropped = released_s
    backbone = _backbone(state)
    assert len(backbone) == 340 and set(state) - set(backbone) == set(expected_dropped)
    make, reasons, full_model = LAYOUTS[layout]
    checkpoint = make(state, backbone)
    keys_before = list(unwrap_state_dict(checkpoint))
    filtered = filter_checkpoint(checkpoint)
    assert list(filtered.state_dict) == list(backbone)  # same keys, same order
    assert all(filtered.state_dict[k] is v for k, v in backbone.items())
    assert Counter(filtered.dropped.values()) == Counter(reasons)
    assert filtered.full_model == full_model
    if reasons.get(DROPPED_CLASSIFIER):
        assert sorted(filtered.classifier) == [
            'head.bias',
            'head.weight',
            'norm.bias',
            'norm.weight',
        ]
        assert filtered.classifier['head.weight'] is state['head.weight']
    assert list(unwrap_state_dict(checkpoint)) == keys_before  # the input is not modified


#: A small arch for the loading tests (loading the 30M-weight CrossFormer-S in
#: every layout takes minutes on 2 cores).
SMALL_ARCH = dict(embed_dims=32, depths=(2, 2, 1, 1), num_heads=(1, 2, 4, 8))


@pytest.fixture(scope='module')
def small_backbone():
    return CrossFormer(arch=SMALL_ARCH)


@pytest.fixture(scope='module')
def small_released(small_backbone):
    """A file in the released layout for :data:`SMALL_ARCH`: distinct weights,
    the two DPB index buffers of every attention, the classifier and final norm."""
    generator = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(v.shape, generator=generator) for k, v in small_backbone.state_dict().items()
    }
    for key in [k for k in state if k.endswith('.attn.qkv.weight')]:
        attn = key[: -len('qkv.weight')]
        state[attn + 'biases'] = torch.randn(169, 2, generator=generator)
        state[attn + 'relative_position_index'] = torch.randint(0, 169, (49, 49))
    state.update(
        {
            'norm.weight': torch.ones(256),
            'norm.bias': torch.zeros(256),
            'head.weight': torch.randn(10, 256, generator=generator),
            'head.bias': torch.zeros(10),
        }
    )
    return state


def _zeroed(model):
    with torch.no_grad():
        for value in model.state_dict().values():
            value.zero_()
    return model


def _assert_holds(model, expected):
    own = model.state_dict()
    assert set(own) == set(expected)
    for key, value in own.items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_pre_hook_and_loader_load_what_the_filter_gives(
    layout, small_released, small_backbone, tmp_path
):
    """The bare backbone's load pre-hook (torch's load_state_dict, mmengine's
    load_checkpoint) and the loader (init_cfg Pretrained) load exactly
    ``filter_checkpoint(...).state_dict``, strictly."""
    checkpoint = LAYOUTS[layout][0](small_released, _backbone(small_released))
    expected = filter_checkpoint(checkpoint).state_dict
    assert len(expected) == len(small_backbone.state_dict())

    result = _zeroed(small_backbone).load_state_dict(dict(checkpoint), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    _assert_holds(small_backbone, expected)

    path = str(tmp_path / 'checkpoint.pth')
    torch.save(checkpoint, path)
    dropped = load_backbone_checkpoint(_zeroed(small_backbone), path)
    _assert_holds(small_backbone, expected)
    assert dropped == sorted(filter_checkpoint(checkpoint).dropped)

    load_checkpoint(_zeroed(small_backbone), path, strict=True, logger='silent')
    _assert_holds(small_backbone, expected)


def test_pre_hook_inside_a_model_drops_only_the_dpb_index_buffers(small_released):
    """Inside a full model the backbone's pre-hook drops its DPB index buffers;
    anything else that does not fit is still reported."""
    state = small_released
    backbone = _backbone(state)
    model = nn.Module()
    model.backbone = CrossFormer(arch=SMALL_ARCH)
    model.neck = nn.Linear(2, 2)
    neck = {'neck.weight': torch.ones(2, 2), 'neck.bias': torch.ones(2)}
    buffers = {
        k: v
        for k, v in state.items()
        if filter_checkpoint(state).dropped.get(k) == DROPPED_DPB_BUFFER
    }
    assert len(buffers) == 12
    full = {**_prefixed('backbone.', {**backbone, **buffers}), **neck}
    result = model.load_state_dict(full, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    _assert_holds(model.backbone, backbone)
    # a classifier part under backbone. is no DPB index buffer: reported
    result = model.load_state_dict(
        {**full, 'backbone.head.weight': state['head.weight']}, strict=False
    )
    assert result.unexpected_keys == ['backbone.head.weight']


@pytest.mark.parametrize('prefix', ['', 'ema.'])
@pytest.mark.parametrize(
    'layout',
    ['raw released file', "{'model'} released file + yacs config", 'module. prefix, released'],
)
def test_classifier_pre_hook_maps_released_files_through_the_filter(
    layout, prefix, released_s, small_backbone
):
    """``_checkpoint_filter`` (mmpretrain's ImageClassifier runs it as a load
    pre-hook of the classifier) gives ``backbone.`` + the filter's state dict and
    ``head.`` + its classifier, under the prefix it is called with; other keys stay."""
    state, _ = released_s
    checkpoint = LAYOUTS[layout][0](state, _backbone(state))
    filtered = filter_checkpoint(checkpoint)
    other = {'steps': torch.tensor(3)} if prefix else {}  # e.g. mmengine's EMA model
    loaded = {**other, **_prefixed(prefix, checkpoint)}
    small_backbone._checkpoint_filter(loaded, prefix)
    expected = {
        **other,
        **_prefixed(prefix + 'backbone.', filtered.state_dict),
        **_prefixed(prefix + 'head.', filtered.classifier),
    }
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())


@pytest.mark.parametrize(
    'checkpoint',
    [
        {'state_dict': {**_prefixed('backbone.', {'layers.0.x': torch.ones(1)}), **CLS_HEAD}},
        {'head.head.weight': torch.ones(1000, 768)},  # a part of the classifier's own layout
    ],
)
def test_classifier_pre_hook_leaves_the_classifier_layout(checkpoint, small_backbone):
    """The classifier's own files are only unwrapped, partial ones left alone."""
    loaded = dict(checkpoint)
    small_backbone._checkpoint_filter(loaded, '')
    assert loaded.keys() == unwrap_state_dict(checkpoint).keys()


def test_one_unwrap_for_the_loader_and_the_nonfinite_check():
    """safe_load's NaN / Inf check reads the weights through the same unwrap
    (unchecked: no error for what holds no state dict)."""
    weights = {'module.a': torch.ones(1)}
    for checkpoint in (
        weights,
        {'model': weights, 'config': 'x'},
        {'state_dict': weights, 'model': 'name', 'epoch': 3},
    ):
        assert dict(unwrap_state_dict(checkpoint)) == {'a': weights['module.a']}
        assert dict(model_weights(checkpoint)) == {'a': weights['module.a']}
    assert model_weights([1, 2]) == {}
    assert dict(model_weights({'a': 1, 'b': torch.ones(1)})).keys() == {'a', 'b'}
    with pytest.raises(CheckpointMismatchError, match=r'not all tensors: a \(int\)'):
        unwrap_state_dict({'a': 1, 'b': torch.ones(1)})
