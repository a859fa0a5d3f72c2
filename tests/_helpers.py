"""Helpers shared by the test modules: the repository root, :func:`run` for a
command, :func:`make_toy_set` for a tiny toy COCO set.

Toy data writers and config overrides live in :mod:`crossformer_mm.testing`.
"""
import os
import os.path as osp
import subprocess

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
        args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f'{" ".join(map(str, args))} exited with {result.returncode}:\n'
        f'{result.stdout[-6000:]}')
    return result.stdout


def make_toy_set(root: str, num_train: int = 8, num_val: int = 4) -> str:
    """Write the toy COCO set under ``root``; return it with a trailing slash."""
    make_toy_coco(root, num_train, num_val, size=TOY_SIZE, seed=0)
    return osp.join(root, '')
