"""``custom_imports`` sits in the base file that uses the custom types: a
config made of that model base and any other toolbox bases (here mmdet's /
mmseg's own schedules and datasets) still finds CrossFormer, in a fresh
interpreter that never imported this package."""

import glob
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

from _helpers import REPO_ROOT

BASES = osp.join(REPO_ROOT, 'configs', '_base_')
MODEL_BASES = {
    'det_mask_rcnn_crossformer_fpn.py': [
        'mmdet::_base_/datasets/coco_instance.py',
        'mmdet::_base_/schedules/schedule_2x.py',
        'mmdet::_base_/default_runtime.py',
    ],
    'det_retinanet_crossformer_fpn.py': [
        'mmdet::_base_/datasets/coco_detection.py',
        'mmdet::_base_/schedules/schedule_1x.py',
        'mmdet::_base_/default_runtime.py',
    ],
    'det_cascade_mask_rcnn_crossformer_fpn.py': [
        'mmdet::_base_/datasets/coco_instance.py',
        'mmdet::_base_/schedules/schedule_1x.py',
        'mmdet::_base_/default_runtime.py',
    ],
    # the seg model bases hold their dataset and schedule already: built alone
    'seg_upernet_crossformer_160k_ade20k.py': [],
    'seg_fpn_crossformer_80k_ade20k.py': [],
}


def test_every_config_imports_what_it_uses():
    configs = glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    assert len(configs) > 30
    for path in configs:
        parts = osp.relpath(path, osp.join(REPO_ROOT, 'configs')).split(osp.sep)
        if '_base_' in parts or parts[0] == 'deploy':  # bases; mmdeploy's deploy configs
            continue
        cfg = Config.fromfile(path)
        imports = cfg.get('custom_imports', {}).get('imports', [])
        needed = {
            'mmpose': 'crossformer_mm.pose',
            'mmpretrain': 'crossformer_mm.classification',
        }.get(cfg.default_scope, 'crossformer_mm')
        assert needed in imports, (path, imports)


def test_schedule_and_dataset_bases_declare_no_imports():
    for name in (
        'det_schedule_adamw_1x.py',
        'det_schedule_adamw_3x.py',
        'det_coco_instance_ms-crop.py',
        'pose_schedule_adam_300e.py',
    ):
        assert 'custom_imports' not in Config.fromfile(osp.join(BASES, name)), name


@pytest.mark.slow
@pytest.mark.parametrize('model_base', sorted(MODEL_BASES))
def test_model_base_with_other_toolbox_bases_builds_in_a_fresh_interpreter(model_base, tmp_path):
    scope = 'mmdet' if model_base.startswith('det_') else 'mmseg'
    config = tmp_path / 'swapped.py'
    config.write_text(
        textwrap.dedent(f"""
        _base_ = [{osp.join(BASES, model_base)!r}, *{MODEL_BASES[model_base]!r}]
        model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 1, 1),
                                             num_heads=(1, 2, 4, 8)), init_cfg=None))
    """)
    )
    code = textwrap.dedent(f"""
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(config)!r})   # custom_imports imports crossformer_mm here
        assert 'crossformer_mm' in sys.modules
        init_default_scope({scope!r})
        from {scope}.registry import MODELS
        backbone = MODELS.build(cfg.model.backbone)
        print(type(backbone).__module__, type(backbone).__name__)
    """)
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'crossformer_mm.models.backbones.crossformer CrossFormer' in result.stdout
