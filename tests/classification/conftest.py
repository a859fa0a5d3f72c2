"""Fixtures of the classification tests."""

import pytest

from classification.cls_helpers import released_s_state_dict


@pytest.fixture(scope='module')
def released_s(reference_dir, deterministic_weights):
    return released_s_state_dict(reference_dir, deterministic_weights)
