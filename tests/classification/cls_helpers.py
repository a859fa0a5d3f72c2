"""Helpers of the classification tests: configs, models, released-layout files."""

import os.path as osp
from typing import Dict

import torch
import yacs.config
from mmengine.config import Config
from mmengine.registry import init_default_scope

import crossformer_mm.classification  # noqa: F401  (registers the classifier)
from _helpers import REPO_ROOT, released_layout

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
#: DPB index buffers of the released files: (2G-1)^2 x 2 offsets, G^2 x G^2 indices.
DPB_BUFFERS = ('biases', 'relative_position_index')


def load_config(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def build_classifier(model_cfg) -> torch.nn.Module:
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS

    return MODELS.build(model_cfg)


def released_state_dict(model: torch.nn.Module, group_size: int = 7) -> Dict[str, torch.Tensor]:
    """The classifier's weights in the released layout (``patch_embed.*``,
    ``layers.*``, ``norm.*``, ``head.*``) with the DPB index buffers that the
    original classification model stores beside every attention."""
    state = {}
    for key, value in model.state_dict().items():
        part, name = key.split('.', 1)
        assert part in ('backbone', 'head'), key
        state[name] = value.clone()
    g = group_size
    for key in [k for k in state if k.endswith('.attn.qkv.weight')]:
        stem = key[: -len('qkv.weight')]
        state[stem + 'biases'] = torch.zeros((2 * g - 1) ** 2, 2)
        state[stem + 'relative_position_index'] = torch.zeros(g * g, g * g, dtype=torch.long)
    return state


def released_s_state_dict(reference_dir: str, deterministic_weights) -> Dict[str, torch.Tensor]:
    """CrossFormer-S weights in the exact key layout of the released
    ``crossformer-s.pth`` (``shared/reference/crossformer_s_keys.txt``)."""
    return released_layout(reference_dir, deterministic_weights)[0]


def yacs_config() -> yacs.config.CfgNode:
    """The kind of config object a released file pickles beside ``model``."""
    return yacs.config.CfgNode(
        dict(MODEL=dict(TYPE='cross-scale', NAME='crossformer-s', CROS=dict(EMBED_DIM=96)))
    )
