"""tools/misc/train_toy_recipes.py: each Swin-recipe config with CrossFormer (DINO, Mask2Former
COCO and ADE20K, top-down heatmap) trains a few iterations on its toy set with the stock runner,
validates with the recipe's evaluator, reports the loss and the metric, and exits with status 1
exactly when the loss did not fall or the metric is not above ``--min-metric``. The learning
checks themselves (300 iterations) are runs of the same script (docs/recipes.md)."""

import re
import subprocess
import sys

import pytest

from _helpers import REPO_ROOT, command_env

SUMMARY = re.compile(
    r'train loss ([0-9.]+) \(first \d+ iterations\) -> ([0-9.]+) \(last \d+\); '
    r'.* ([-0-9.]+) after 4 iterations'
)


@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['dino', 'mask2former-coco', 'mask2former-ade', 'topdown'])
def test_a_short_run_reports_and_judges(recipe, tmp_path):
    min_metric = 0.0
    result = subprocess.run(
        [
            sys.executable,
            'tools/misc/train_toy_recipes.py',
            recipe,
            '--work-dir',
            str(tmp_path / 'work'),
            '--num-train',
            '8',
            '--num-val',
            '2',
            '--batch-size',
            '2',
            '--iters',
            '4',
            '--log-interval',
            '1',
            '--min-metric',
            str(min_metric),
        ],
        cwd=REPO_ROOT,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout[-4000:]
    first, last, metric = map(float, found.groups())
    learned = last < first and metric > min_metric
    assert result.returncode == (0 if learned else 1), result.stdout[-3000:]
