"""Every toolbox builds the package's modules under its own default scope."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import crossformer_mm  # noqa: F401

SCOPES = ['mmdet', 'mmseg', 'mmpose']
SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def _registry(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmpose.registry import MODELS
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
        lsda = registry.build(dict(type='LSDA', embed_dims=64, num_heads=2, group_size=7,
                                   interval=2, attn_type='lda'))
        cel = registry.build(dict(type='CrossScaleEmbedding', in_channels=3, out_channels=64))
        merge = registry.build(dict(type='CrossScalePatchMerging', in_channels=64))
        block = registry.build(dict(type='CrossFormerBlock', embed_dims=64, num_heads=2,
                                    group_size=7, interval=2))
    assert dpb(torch.zeros(5, 2)).shape == (5, 2)
    tokens = cel(torch.randn(1, 3, 64, 64))
    assert lsda(tokens).shape == block(tokens).shape == (1, 16, 16, 64)
    assert merge(tokens).shape == (1, 8, 8, 128)


def test_config_custom_imports(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=['crossformer_mm'], allow_failed_imports=False)
        default_scope = 'mmdet'
        backbone = dict(type='CrossFormer', arch={SMALL!r}, out_indices=(1, 2, 3))
    """))
    cfg = Config.fromfile(str(cfg_file))
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = MODELS.build(cfg.backbone)
    assert len(backbone(torch.randn(1, 3, 64, 64))) == 3


def test_import_alongside_toolboxes_and_twice_in_a_fresh_interpreter():
    code = textwrap.dedent("""
        import importlib
        import mmdet.models, mmseg.models, mmpose.models
        import crossformer_mm
        import crossformer_mm.models
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
