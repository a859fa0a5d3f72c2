"""Helpers shared by the test modules: the repository root, which stack runs the
tests (:data:`THIS`) and its ``mim`` spellings, :func:`run` for a command,
:func:`make_toy_set` for a tiny toy COCO set, :func:`released_layout` for a state
dict in a released file's key layout.

Toy data writers and config overrides live in :mod:`crossformer_mm.testing`.
"""

import importlib.metadata as metadata
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import torch

from crossformer_mm.testing.toy_coco import make_toy_coco

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Image side of the toy COCO sets of the stock-tool tests.
TOY_SIZE = 64


def installed(distribution: str) -> bool:
    """Whether ``distribution`` (a pip name) is installed in this environment."""
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


#: Whether this is the maintained stack (the OneDL forks) rather than the frozen one.
ONEDL = installed('onedl-mmengine')
THIS, OTHER = ('onedl', 'frozen') if ONEDL else ('frozen', 'onedl')
#: The ``mim train`` / ``mim test`` package argument of each toolbox on each stack.
#: onedl-mim 0.5.1 lists onedl-mmdetection and mmdet3d for 'mmdet' ("Can't determine a
#: unique package"), and takes mmpose's dist-info folder for its root (no tools there):
#: its pose configs run through this package's own tools.
MIM_PACKAGE = {
    'frozen': {
        'mmdet': 'mmdet',
        'mmseg': 'mmseg',
        'mmpose': 'mmpose',
        'mmpretrain': 'mmpretrain',
        'crossformer_mm': 'crossformer_mm',
    },
    'onedl': {
        'mmdet': 'onedl-mmdetection',
        'mmseg': 'mmseg',
        'mmpose': 'crossformer_mm',
        'mmpretrain': 'mmpretrain',
        'crossformer_mm': 'crossformer_mm',
    },
}[THIS]


def command_env(env=None) -> dict:
    """The environment of a command run by a test: 1 CPU thread and this interpreter's
    environment first on ``PATH`` (its ``mim``, ``python``; ``PYTHON`` for the launch
    scripts), whatever environment is active; ``env`` overrides."""
    full_env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        OMP_WAIT_POLICY='PASSIVE',
        PYTHON=sys.executable,
        PATH=os.pathsep.join([osp.dirname(sys.executable), os.environ.get('PATH', '')]),
    )
    full_env.update(env or {})
    return full_env


def run(args, cwd=REPO_ROOT, env=None, timeout=300) -> str:
    """Run a command in :func:`command_env` (``env`` overrides); return its output
    (stdout and stderr), fail with it."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=command_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f'{" ".join(map(str, args))} exited with {result.returncode}:\n{result.stdout[-6000:]}'
    )
    return result.stdout


def make_toy_set(root: str, num_train: int = 8, num_val: int = 4) -> str:
    """Write the toy COCO set under ``root``; return it with a trailing slash."""
    make_toy_coco(root, num_train, num_val, size=TOY_SIZE, seed=0)
    return osp.join(root, '')


def released_layout(
    reference_dir: str, deterministic_weights, name: str = 'crossformer_s_keys.txt'
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A state dict in the key layout of a released file (a key list of
    ``shared/reference``) with deterministic weights, and the keys the list marks DROP."""
    shapes, dropped = {}, []
    for line in open(osp.join(reference_dir, name)):
        if line.startswith('#') or not line.strip():
            continue
        fields = line.split() if name == 'crossformer_s_keys.txt' else line.split('\t')
        if name == 'crossformer_s_keys.txt':  # kind key shape keep/DROP
            _, key, shape, column = fields
            if column == 'DROP':
                dropped.append(key)
        else:  # key shape dtype
            key, shape = fields[0], fields[1]
        shapes[key] = tuple(int(s) for s in shape.strip('[]').split(',') if s)
    floats = {k: s for k, s in shapes.items() if not k.endswith('relative_position_index')}
    state = deterministic_weights.deterministic_state_dict(floats)
    for key, shape in shapes.items():
        if key.endswith('relative_position_index'):
            state[key] = torch.zeros(shape, dtype=torch.long)
    return state, sorted(dropped)


def one_per_family(
    names: Sequence[str], family: Callable[[str], str], values: Optional[Sequence] = None
) -> list:
    """``names`` (or ``values``, with ``names`` as their ids) as pytest params: the first of
    each ``family`` runs in every run; the others are marked ``every_config`` (the whole
    suite runs them, ``make test-stack`` runs one config per family)."""
    seen = set()
    params = []
    for i, name in enumerate(names):
        marks = [pytest.mark.every_config] if family(name) in seen else []
        seen.add(family(name))
        if values is None:
            params.append(pytest.param(name, marks=marks))
        else:
            params.append(pytest.param(values[i], marks=marks, id=name))
    return params


def model_family(config: str) -> str:
    """The model of a config name: ``mask_rcnn``, ``upernet``, ``higherhrnet_w48``, ..."""
    return config.split('_crossformer')[0].split('_coco')[0].split('_crowdpose')[0]
