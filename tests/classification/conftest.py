"""Fixtures of the classification tests."""

import pytest
from mmengine.registry import init_default_scope

from classification.cls_helpers import released_s_state_dict


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Every test runs in mmpretrain's default scope, as an mmpretrain config sets it, not
    in whatever scope a test of another toolbox left behind (mmpretrain's ClsHead builds its
    loss in the current scope's registry)."""
    init_default_scope('mmpretrain')


@pytest.fixture(scope='module')
def released_s(reference_dir, deterministic_weights):
    return released_s_state_dict(reference_dir, deterministic_weights)
