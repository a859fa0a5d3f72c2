"""Shared test fixtures: where the project's ``shared/`` reference data lives."""
import importlib.util
import os
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def shared_dir() -> str:
    """The ``shared/`` folder beside the repository (or ``$CFMM_SHARED``)."""
    path = os.environ.get('CFMM_SHARED', osp.join(osp.dirname(REPO_ROOT), 'shared'))
    if not osp.isdir(osp.join(path, 'reference')):
        raise FileNotFoundError(
            f'reference data not found under {path!r}: clone the repository next to '
            'shared/ or set CFMM_SHARED to the folder that holds reference/')
    return path


@pytest.fixture(scope='session')
def reference_dir() -> str:
    return osp.join(shared_dir(), 'reference')


@pytest.fixture(scope='session')
def deterministic_weights(reference_dir):
    """The reference data's ``det_weights.py`` module: deterministic weights
    derived from the key names alone."""
    spec = importlib.util.spec_from_file_location(
        'det_weights', osp.join(reference_dir, 'det_weights.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
