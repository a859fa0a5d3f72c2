"""Helpers shared by the test modules: the repository root, :func:`run` for a
command, :func:`make_toy_set` for a tiny toy COCO set, :func:`released_layout`
for a state dict in a released file's key layout.

Toy data writers and config overrides live in :mod:`crossformer_mm.testing`.
"""

import os
import os.path as osp
import subprocess
from typing import Dict, List, Tuple

import torch

from crossformer_mm.testing.toy_coco import make_toy_coco

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Image side of the toy COCO sets of the stock-tool tests.
TOY_SIZE = 64


def run(args, cwd=REPO_ROOT, env=None, timeout=300) -> str:
    """Run a command with 1 CPU thread (``env`` overrides the environment);
    return its output (stdout and stderr), fail with it."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE')
    full_env.update(env or {})
    result = subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
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
