"""Every toolbox builds the package's modules under its own default scope, by
plain, scoped (``crossformer_mm.CrossFormer``) and original (``CrossFormer_S``)
type names; ``import crossformer_mm`` needs only torch, mmengine and mmcv."""

import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import crossformer_mm  # noqa: F401

SCOPES = ['mmdet', 'mmseg', 'mmpose', 'mmpretrain']
SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def _registry(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    elif scope == 'mmpose':
        from mmpose.registry import MODELS
    else:
        from mmpretrain.registry import MODELS

        import crossformer_mm.classification  # noqa: F401  (registers the classifier)
    return MODELS


@pytest.mark.parametrize('scope', SCOPES)
def test_backbone_builds_in_every_scope(scope):
    with DefaultScope.overwrite_default_scope(scope):
        init_default_scope(scope)
        backbone = _registry(scope).build(dict(type='CrossFormer', arch=SMALL))
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]


@pytest.mark.parametrize('scope', SCOPES)
def test_layers_build_in_every_scope(scope):
    registry = _registry(scope)
    with DefaultScope.overwrite_default_scope(scope):
        dpb = registry.build(dict(type='DynamicPosBias', pos_dims=4, num_heads=2))
        lsda = registry.build(
            dict(type='LSDA', embed_dims=64, num_heads=2, group_size=7, interval=2, attn_type='lda')
        )
        cel = registry.build(dict(type='CrossScaleEmbedding', in_channels=3, out_channels=64))
        merge = registry.build(dict(type='CrossScalePatchMerging', in_channels=64))
        block = registry.build(
            dict(type='CrossFormerBlock', embed_dims=64, num_heads=2, group_size=7, interval=2)
        )
    assert dpb(torch.zeros(5, 2)).shape == (5, 2)
    tokens = cel(torch.randn(1, 3, 64, 64))
    assert lsda(tokens).shape == block(tokens).shape == (1, 16, 16, 64)
    assert merge(tokens).shape == (1, 8, 8, 128)


def test_config_custom_imports(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        textwrap.dedent(f"""
        custom_imports = dict(imports=['crossformer_mm'], allow_failed_imports=False)
        default_scope = 'mmdet'
        backbone = dict(type='CrossFormer', arch={SMALL!r}, out_indices=(1, 2, 3))
    """)
    )
    cfg = Config.fromfile(str(cfg_file))
    from mmdet.registry import MODELS

    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = MODELS.build(cfg.backbone)
    assert len(backbone(torch.randn(1, 3, 64, 64))) == 3


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_import_alongside_toolboxes_and_twice_in_a_fresh_interpreter():
    code = textwrap.dedent("""
        import importlib
        import mmdet.models, mmseg.models, mmpose.models
        import crossformer_mm
        import crossformer_mm.models
        import crossformer_mm.pose
        importlib.import_module('crossformer_mm')
        from mmdet.utils import register_all_modules as det
        from mmseg.utils import register_all_modules as seg
        from mmpose.utils import register_all_modules as pose
        det(); seg(); pose()
        from mmengine.registry import MODELS
        assert MODELS.get('CrossFormer') is crossformer_mm.models.backbones.CrossFormer
        print('ok')
    """)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith('ok')


@pytest.mark.parametrize('scope', SCOPES)
def test_scoped_type_name_builds_in_every_toolbox_config(scope, tmp_path):
    """``type='crossformer_mm.CrossFormer'`` (as people write
    ``type='mmpretrain.ConvNeXt'``) in a config of each toolbox."""
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        textwrap.dedent(f"""
        default_scope = {scope!r}
        backbone = dict(type='crossformer_mm.CrossFormer', arch={SMALL!r}, out_indices=(3, ))
    """)
    )
    cfg = Config.fromfile(str(cfg_file))
    registry = _registry(scope)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        init_default_scope(scope)
        backbone = registry.build(cfg.backbone)
    assert isinstance(backbone, crossformer_mm.models.backbones.CrossFormer)
    assert backbone(torch.randn(1, 3, 64, 64))[0].shape == (1, 256, 2, 2)


ORIGINAL_CONFIGS = {
    # type: (arch, lda_mode, use_acl, drop path of the last block)
    'CrossFormer_S': ('small', 'iclr', False, 0.2),
    'CrossFormer_B': ('base', 'iclr', False, 0.3),
    'CrossFormer_L': ('large', 'iclr', False, 0.5),
    'CrossFormer_S2': ('pp-small', 'windowed', True, 0.2),
    'CrossFormer_B2': ('pp-base', 'windowed', True, 0.3),
}


@pytest.mark.parametrize('name', sorted(ORIGINAL_CONFIGS))
def test_original_type_names_build_with_their_detection_settings(name):
    """The backbone dicts of the original configs build unchanged (mmdet scope)
    into the same model as the new form."""
    from mmdet.registry import MODELS

    arch, lda_mode, use_acl, drop_path = ORIGINAL_CONFIGS[name]
    original = dict(
        type=name,
        group_size=[7, 7, 7, 7],
        crs_interval=[8, 4, 2, 1],
        adaptive_interval=False,
        init_cfg=dict(type='Pretrained', checkpoint='./backbone-crossformer-s.pth'),
    )
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(original)
    reference = crossformer_mm.models.backbones.CrossFormer(
        arch=arch, group_size=[7] * 4, crs_interval=[8, 4, 2, 1], drop_path_rate=drop_path
    )
    assert isinstance(backbone, crossformer_mm.models.backbones.CrossFormer)
    assert {k: v.shape for k, v in backbone.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert backbone.arch_settings == reference.arch_settings
    assert backbone.arch_settings['lda_mode'] == lda_mode
    assert backbone.arch_settings['use_acl'] == use_acl
    assert backbone.layers[-1].blocks[-1].drop_path.drop_prob == pytest.approx(drop_path)
    assert backbone.init_cfg['checkpoint'] == './backbone-crossformer-s.pth'


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_original_type_name_logs_the_new_form():
    code = textwrap.dedent("""
        import crossformer_mm
        from mmengine.registry import MODELS
        for _ in range(2):
            MODELS.build(dict(type='CrossFormer_B2', group_size=[7, 7, 7, 7],
                              crs_interval=[8, 4, 2, 1]))
    """)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    line = (
        "type='CrossFormer_B2' (original CrossFormer name) is type='CrossFormer', "
        "arch='pp-base', drop_path_rate=0.3, group_size=[7, 7, 7, 7], "
        'crs_interval=[8, 4, 2, 1]'
    )
    assert result.stdout.count(line) == 1, result.stdout


def test_original_factory_arguments():
    from mmengine.registry import MODELS

    backbone = MODELS.build(
        dict(
            type='CrossFormer_S',
            group_size=[7, 7, 7, 7],
            crs_interval=[8, 4, 2, 1],
            pretrained='x.pth',
        )
    )
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='x.pth')
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(
            dict(
                type='CrossFormer_S',
                pretrained='x.pth',
                init_cfg=dict(type='Pretrained', checkpoint='y.pth'),
            )
        )
    with pytest.raises(ValueError, match=r'adaptive_interval=True\) is not supported'):
        MODELS.build(dict(type='CrossFormer_S2', adaptive_interval=True))


BLOCK_TOOLBOXES = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmseg', 'mmpose', 'mmpretrain'):
            raise ImportError(f'{name} is blocked by the test')
sys.meta_path.insert(0, _Blocked())
"""


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_import_needs_only_torch_mmengine_mmcv():
    """With mmdet, mmseg, mmpose and mmpretrain unimportable, ``import
    crossformer_mm`` registers the backbone and layers, and they run."""
    code = BLOCK_TOOLBOXES + textwrap.dedent("""
        import torch
        import crossformer_mm
        from mmengine.registry import MODELS
        for name in ('CrossFormer', 'crossformer_mm.CrossFormer', 'CrossFormer_S', 'LSDA',
                     'DynamicPosBias', 'CrossScaleEmbedding', 'CrossFormerBlock'):
            assert MODELS.get(name) is not None, name
        backbone = MODELS.build(dict(type='crossformer_mm.CrossFormer', arch='tiny'))
        print([tuple(o.shape) for o in backbone(torch.randn(1, 3, 64, 64))])
        loaded = sorted(m for m in sys.modules if m.split('.')[0] in
                        ('mmdet', 'mmseg', 'mmpose', 'mmpretrain'))
        print('toolboxes loaded:', loaded)
    """)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)' in result.stdout
    assert 'toolboxes loaded: []' in result.stdout
    blocked = subprocess.run(
        [sys.executable, '-c', BLOCK_TOOLBOXES + 'import mmdet'], capture_output=True, text=True
    )
    assert blocked.returncode != 0 and 'blocked by the test' in blocked.stderr
