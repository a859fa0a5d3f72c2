"""The classifier: mmpretrain's ImageClassifier + CrossFormer + CrossFormerClsHead.
Released-layout files load as they are (raw, ``{'model': ...}``, with a yacs
config beside it) through every path with nothing missing or unexpected except
the DPB index buffers; the logits are the original head's on the original
stage features; other input sizes (384) need no interpolation."""

import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from classification.cls_helpers import (
    DPB_BUFFERS,
    build_classifier,
    load_config,
    released_s_state_dict,
    released_state_dict,
    yacs_config,
)
from crossformer_mm.classification import CrossFormerClsHead
from crossformer_mm.models.backbones import CrossFormer

S_CONFIG = 'crossformer-s_8xb128_in1k.py'


def small_classifier(init_cfg=None, backbone_init_cfg=None, num_classes=1000):
    cfg = load_config(S_CONFIG).model
    cfg.backbone.init_cfg = backbone_init_cfg
    cfg.head.num_classes = num_classes
    cfg.init_cfg = init_cfg
    return build_classifier(cfg)


def assert_holds(model, released, skip=()):
    """Every weight of ``model`` equals its released tensor (and there is one for each)."""
    own = model.state_dict()
    expected = {
        ('backbone.' if k.split('.')[0] in ('patch_embed', 'layers') else 'head.') + k: v
        for k, v in released.items()
        if k.rsplit('.', 1)[-1] not in DPB_BUFFERS
    }
    assert set(own) == set(expected)
    for key, value in own.items():
        if not key.startswith(skip):
            assert torch.equal(value, expected[key]), key


@pytest.fixture(scope='module')
def released_files(tmp_path_factory, released_s):
    """The released layout as a raw state dict, as ``{'model': ...}``, and as
    ``{'model': ..., 'config': <yacs CfgNode>, 'epoch': ...}``."""
    folder = tmp_path_factory.mktemp('released')
    files = {}
    for name, content in (
        ('raw', released_s),
        ('model', {'model': released_s}),
        (
            'yacs',
            {'model': released_s, 'config': yacs_config(), 'epoch': 299, 'max_accuracy': 82.5},
        ),
    ):
        files[name] = str(folder / f'crossformer-s_{name}.pth')
        torch.save(content, files[name])
    return files


def test_head_carries_the_released_names():
    head = CrossFormerClsHead(num_classes=1000, in_channels=768)
    assert sorted(head.state_dict()) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']


def test_the_released_layout_is_the_classifier_exactly(released_s):
    """The key file of the released CrossFormer-S: 368 entries = the
    classifier's 344 parameters + 24 DPB index buffers; 30,657,394 parameters."""
    model = small_classifier()
    released = {k for k in released_s if k.rsplit('.', 1)[-1] not in DPB_BUFFERS}
    assert len(released_s) == 368 and len(released) == 344
    assert len(model.state_dict()) == 344
    assert sum(p.numel() for p in model.parameters()) == 30_657_394
    assert set(released_state_dict(model)) == set(released_s)


@pytest.mark.parametrize('layout', ['raw', 'model', 'yacs'])
def test_load_checkpoint_strict(layout, released_files, released_s):
    """mmengine's load_checkpoint (the path of init_cfg, load_from and
    tools/test.py), strict: nothing missing, nothing unexpected."""
    model = small_classifier()
    load_checkpoint(model, released_files[layout], strict=True)
    assert_holds(model, released_s)


@pytest.mark.parametrize('wrapped', [False, True])
def test_torch_load_state_dict_strict(wrapped, released_s):
    """torch's own load_state_dict passes each child only its prefix: the
    classifier-level pre-hook still maps the whole file."""
    model = small_classifier()
    state = {'model': released_s, 'config': yacs_config()} if wrapped else dict(released_s)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert_holds(model, released_s)


def test_only_the_dpb_index_buffers_are_forgiven(released_s):
    """A key that is neither the classifier's nor a DPB index buffer is still
    reported (the pre-hooks do not swallow mismatches)."""
    state = dict(released_s, **{'layers.0.blocks.0.attn.extra': torch.zeros(2)})
    del state['head.bias']
    model = small_classifier()
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ['head.head.bias']
    assert result.unexpected_keys == ['backbone.layers.0.blocks.0.attn.extra']
    with pytest.raises(RuntimeError, match='head.head.bias'):
        small_classifier().load_state_dict(state, strict=True)


def test_init_cfg_on_the_classifier_loads_everything(released_files, released_s):
    model = small_classifier(init_cfg=dict(type='Pretrained', checkpoint=released_files['yacs']))
    model.init_weights()
    assert_holds(model, released_s)


def test_init_cfg_on_the_backbone_loads_the_backbone_for_fine_tuning(released_files, released_s):
    """Pretrained on the backbone (fine-tuning to other classes): the backbone
    holds the released weights, the new 10-class head is initialised."""
    model = small_classifier(
        backbone_init_cfg=dict(type='Pretrained', checkpoint=released_files['yacs']), num_classes=10
    )
    model.init_weights()
    own = model.backbone.state_dict()
    for key, value in own.items():
        assert torch.equal(value, released_s[key]), key
    assert model.head.head.weight.shape == (10, 768)
    assert torch.equal(model.head.norm.weight, torch.ones(768))


@pytest.mark.parametrize('layout', ['raw', 'model', 'yacs'])
def test_the_bare_backbone_loads_a_released_file(layout, released_files, released_s):
    """load_checkpoint / load_state_dict of the dense backbone itself: the
    classifier and the DPB index buffers are dropped, nothing else differs."""
    backbone = CrossFormer(arch='small')
    load_checkpoint(backbone, released_files[layout], strict=True)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, released_s[key]), key
    result = CrossFormer(arch='small').load_state_dict(dict(released_s), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_logits_are_the_original_head_on_the_original_features(
    reference_dir, deterministic_weights
):
    """Released-layout CrossFormer-S weights (the deterministic weights of the
    reference data): the backbone gives the original model's last-stage
    features (fixture ``crossformer_s_iclr_224``), and the logits are the
    original head computed directly: LayerNorm over the 49 tokens, their
    mean, then the linear layer (float64)."""
    released = released_s_state_dict(reference_dir, deterministic_weights)
    model = small_classifier()
    model.load_state_dict(released, strict=True)
    model.eval()
    data = np.load(osp.join(reference_dir, 'fixtures', 'crossformer_s_iclr_224.npz'))
    inputs = torch.from_numpy(data['input'])
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        logits = model(inputs, mode='tensor')
    out3 = torch.from_numpy(data['out3'])
    assert feats[-1].shape == (1, 768, 7, 7)
    torch.testing.assert_close(feats[-1], out3, atol=1e-4, rtol=0)
    tokens = out3.double().flatten(2).transpose(1, 2)  # (1, 49, 768)
    normed = F.layer_norm(
        tokens, (768,), released['norm.weight'].double(), released['norm.bias'].double(), eps=1e-5
    )
    expected = (
        normed.mean(dim=1) @ released['head.weight'].double().T + released['head.bias'].double()
    )
    assert logits.shape == (1, 1000)
    torch.testing.assert_close(logits.double(), expected, atol=2e-4, rtol=0)
    # the order matters: averaging before the norm gives other logits
    pooled_first = F.layer_norm(
        tokens.mean(dim=1),
        (768,),
        released['norm.weight'].double(),
        released['norm.bias'].double(),
        eps=1e-5,
    )
    other = pooled_first @ released['head.weight'].double().T + released['head.bias'].double()
    assert (other - expected).abs().max() > 1e-2


def test_fine_tuning_at_384_needs_no_interpolation(released_s):
    """The position bias is computed from the group shape, not stored per
    size: the 224 weights load strictly into the model fed 384 images, which
    trains (12x12 last stage) with finite loss and gradients everywhere."""
    model = small_classifier(num_classes=1000)
    model.load_state_dict(dict(released_s), strict=True)
    model.train()
    from mmpretrain.structures import DataSample

    inputs = torch.randn(1, 3, 384, 384)
    samples = [DataSample().set_gt_label(3)]
    with torch.no_grad():
        assert model.extract_feat(inputs)[-1].shape == (1, 768, 12, 12)
    losses = model(inputs, samples, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for p in model.parameters()
        if p.requires_grad
    )


def test_head_rejects_a_wrong_feature_map():
    head = CrossFormerClsHead(num_classes=10, in_channels=64)
    with pytest.raises(ValueError, match='in_channels'):
        head((torch.randn(1, 32, 2, 2),))
    with pytest.raises(ValueError, match='positive integer'):
        CrossFormerClsHead(num_classes=0, in_channels=64)
