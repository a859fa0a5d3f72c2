"""tools/misc/make_toy_data.py writes every toy set; bad arguments are one clear line."""

import os.path as osp
import subprocess
import sys

import pytest

from _helpers import REPO_ROOT, run

pytestmark = pytest.mark.slow  # the command line in subprocesses

TOOL = 'tools/misc/make_toy_data.py'
KINDS = {
    'coco': (
        ['--num-train', '2', '--num-val', '1', '--size', '32'],
        'annotations/instances_val.json',
    ),
    'ade': (['--num-train', '2', '--num-val', '1'], 'annotations/validation/ADE_val_00000001.png'),
    'coco-keypoints': (
        ['--num-train', '2', '--num-val', '1', '--size', '64'],
        'annotations/person_keypoints_val.json',
    ),
    'crowdpose': (
        ['--num-train', '2', '--num-test', '1', '--size', '64'],
        'annotations/mmpose_crowdpose_trainval.json',
    ),
    'digits': ([], 'meta/val.txt'),
}


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_every_kind_is_written(kind, tmp_path):
    options, expected = KINDS[kind]
    run([sys.executable, TOOL, kind, str(tmp_path / kind), *options])
    assert osp.isfile(tmp_path / kind / expected)


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, TOOL, 'coco', str(tmp_path), '--size', '8'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert 'error: coco: --size 8: images must be at least 32 px' in result.stderr
    assert 'Traceback' not in result.stderr
