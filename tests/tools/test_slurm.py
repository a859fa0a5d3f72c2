"""tools/slurm_train.sh and slurm_test.sh on a real Slurm: slurmctld + slurmd
of Debian's slurm-wlm for this host only (127.0.0.1, own ports and spool in a
temp dir, started and stopped by the test), 2 tasks on a CPU partition
(GPUS_PER_NODE=0) training and testing the toy detector."""

import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

from _helpers import REPO_ROOT, make_toy_set, run
from crossformer_mm.testing.slurm import LocalSlurmCluster, free_port
from crossformer_mm.testing.toy_configs import det_smoke_options

DEMO_CONFIG = 'configs/demo/mask_rcnn_crossformer_mini_fpn_toy.py'


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    """The running cluster; its SLURM_CONF is in os.environ meanwhile (and
    SLURM_* variables of an enclosing job are not)."""
    with LocalSlurmCluster(str(tmp_path_factory.mktemp('slurm'))) as slurm:
        with pytest.MonkeyPatch.context() as mp:
            for name in os.environ:
                if name.startswith(('SLURM_', 'SBATCH_', 'SRUN_', 'SALLOC_')):
                    mp.delenv(name)
            mp.setenv('SLURM_CONF', slurm.conf_path)
            yield slurm


@pytest.fixture(scope='module')
def options(tmp_path_factory):
    root = make_toy_set(str(tmp_path_factory.mktemp('toy_coco')))
    return det_smoke_options(Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG)), root)


def cpu_tasks(**extra) -> dict:
    """2 tasks on the CPU partition; srun --label prefixes lines by rank."""
    return dict(
        GPUS='2',
        GPUS_PER_NODE='0',
        PORT=str(free_port()),
        MASTER_ADDR='127.0.0.1',
        SRUN_ARGS='--label --time=10',
        **extra,
    )


@pytest.fixture(scope='module')
def trained(cluster, options, tmp_path_factory):
    """slurm_train.sh, 2 tasks: 4 images / (2 ranks x batch 2) = 1 iteration."""
    work_dir = tmp_path_factory.mktemp('slurm_train')
    out = run(
        [
            'bash',
            'tools/slurm_train.sh',
            cluster.partition,
            'cfmm_train',
            DEMO_CONFIG,
            str(work_dir),
            '--cfg-options',
            *options,
        ],
        env=cpu_tasks(),
    )
    return work_dir, out


@pytest.mark.slow
def test_slurm_train_two_tasks_on_cpu_partition(trained):
    work_dir, out = trained
    srun_line = next(line for line in out.splitlines() if line.startswith('+ srun'))
    assert '--gres' not in srun_line and '--ntasks=2' in srun_line
    assert '--cpus-per-task=1' in srun_line
    assert '0:     Distributed launcher: slurm' in out
    assert '0:     GPU number: 2' in out  # mmengine's name for world size
    # rank 1 built its dataset; each rank ran 1 of 1 iterations
    assert re.search(r'^1: loading annotations into memory', out, re.M)
    assert re.search(r'^0: .*Epoch\(train\) \[1\]\[1/1\]', out, re.M)
    assert osp.isfile(work_dir / 'epoch_1.pth')
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip() == str(work_dir / 'epoch_1.pth')


@pytest.mark.slow
def test_slurm_test_two_tasks_prints_coco_metrics(cluster, trained, options, tmp_path):
    work_dir, _ = trained
    out = run(
        [
            'bash',
            'tools/slurm_test.sh',
            cluster.partition,
            'cfmm_test',
            DEMO_CONFIG,
            str(work_dir / 'epoch_1.pth'),
            '--work-dir',
            str(tmp_path),
            '--eval',
            'bbox',
            '--cfg-options',
            *options,
        ],
        env=cpu_tasks(),
    )
    assert '0:     GPU number: 2' in out
    # 4 val images: 2 per rank, gathered for one COCO evaluation
    assert re.search(r'^0: .*Epoch\(test\) \[2/2\]', out, re.M)
    metrics = re.search(r'coco/bbox_mAP: ([0-9.]+)', out)
    assert metrics and 0.0 <= float(metrics.group(1)) <= 1.0, out[-3000:]


@pytest.mark.slow
def test_slurm_gpu_request_reaches_slurm(cluster, options, tmp_path):
    """The default GPU settings ask Slurm for GPUs (--gres=gpu:2, 2 tasks per
    node); this node has none, so the real slurmctld refuses the job."""
    with pytest.raises(AssertionError) as error:
        run(
            [
                'bash',
                'tools/slurm_train.sh',
                cluster.partition,
                'cfmm_gpu',
                DEMO_CONFIG,
                str(tmp_path),
                '--cfg-options',
                *options,
            ],
            env=dict(GPUS='2', SRUN_ARGS='--immediate=20'),
            timeout=60,
        )
    message = str(error.value)
    assert '--gres=gpu:2 --ntasks-per-node=2' in message
    assert re.search(r'srun: error: .*\(gres\)', message), message


def test_missing_slurm_fails_with_install_hint(tmp_path, monkeypatch):
    """Without the programs the cluster refuses to start (the tests fail,
    they are not skipped) and says how to install Slurm."""
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(RuntimeError, match=r'slurm-wlm.*tools/install\.sh'):
        LocalSlurmCluster(str(tmp_path / 'cluster')).start()
    assert not (tmp_path / 'cluster' / 'slurm.conf').exists()
