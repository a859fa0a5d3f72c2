"""Shared test fixtures: where the project's ``shared/`` reference data lives."""

import functools
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
            'shared/ or set CFMM_SHARED to the folder that holds reference/'
        )
    return path


@pytest.fixture(scope='session')
def reference_dir() -> str:
    return osp.join(shared_dir(), 'reference')


@pytest.fixture(scope='session')
def deterministic_weights(reference_dir):
    """The reference data's ``det_weights.py`` module: deterministic weights
    derived from the key names alone."""
    spec = importlib.util.spec_from_file_location(
        'det_weights', osp.join(reference_dir, 'det_weights.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session', autouse=True)
def metafiles_read_once():
    """Read each toolbox's ``.mim`` metafiles once per session.

    mmengine resolves every ``pkg::...`` config path (``mmdet::_base_/...`` included) by
    reading all of the package's metafiles (a hundred YAML files for mmdet) through
    ``mmengine.config.utils.load``, again for every path of every config: most of the time of
    the config tests. Those files do not change during a session, so the loaded values are
    reused; nothing else of the config system changes. Where mmengine has no such ``load``,
    configs load as they are."""
    from mmengine.config import utils as config_utils

    load = getattr(config_utils, 'load', None)
    if load is None:
        yield
        return
    cached = functools.lru_cache(maxsize=None)(load)

    def load_once(file, *args, **kwargs):
        if args or kwargs or not isinstance(file, str):
            return load(file, *args, **kwargs)
        return cached(file)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_utils, 'load', load_once)
        yield
