"""Multi-node torchrun through tools/dist_train.sh on one machine: two
"nodes" (NNODES=2, NODE_RANK=0/1, MASTER_ADDR=127.0.0.1) of one process each
train the toy detector together over gloo."""

import os.path as osp
import re
import subprocess

import pytest
from mmengine.config import Config

from _helpers import REPO_ROOT, command_env, make_toy_set
from crossformer_mm.testing.slurm import free_port
from crossformer_mm.testing.toy_configs import det_smoke_options

DEMO_CONFIG = 'configs/demo/mask_rcnn_crossformer_mini_fpn_toy.py'


@pytest.mark.slow
def test_two_node_torchrun_on_one_machine(tmp_path):
    root = make_toy_set(str(tmp_path / 'toy_coco'))
    options = det_smoke_options(Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG)), root)
    work_dir = tmp_path / 'work'  # shared by both nodes, as on a cluster FS
    env = command_env(dict(NNODES='2', MASTER_ADDR='127.0.0.1', PORT=str(free_port())))
    logs = [tmp_path / f'node{rank}.log' for rank in (0, 1)]
    procs = []
    try:
        for rank, log in enumerate(logs):
            with open(log, 'w') as out:
                procs.append(
                    subprocess.Popen(
                        [
                            'bash',
                            'tools/dist_train.sh',
                            DEMO_CONFIG,
                            '1',
                            '--work-dir',
                            str(work_dir),
                            '--cfg-options',
                            *options,
                        ],
                        cwd=REPO_ROOT,
                        env=dict(env, NODE_RANK=str(rank)),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        codes = [proc.wait(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outs = [log.read_text(errors='replace') for log in logs]
    for rank, (code, out) in enumerate(zip(codes, outs)):
        assert code == 0, f'node {rank} exited with {code}:\n{out[-6000:]}'
    assert 'Distributed launcher: pytorch' in outs[0]
    assert 'GPU number: 2' in outs[0]  # mmengine's name for world size
    # 4 images / (2 ranks x batch 2): 1 iteration; node 1 loaded its data
    assert re.search(r'Epoch\(train\) \[1\]\[1/1\]', outs[0])
    assert 'loading annotations into memory' in outs[1]
    assert osp.isfile(work_dir / 'epoch_1.pth')
