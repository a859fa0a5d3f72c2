"""A one-node Slurm cluster on 127.0.0.1 for tests of the Slurm launchers.

:class:`LocalSlurmCluster` writes a ``slurm.conf`` for this host only into a
folder of its own (own ports, state, spool and log files; ``auth/none`` and
``cred/none``, so no munge), starts ``slurmctld -D`` and ``slurmd -D`` as child
processes, waits until ``sinfo`` shows the node idle, and stops both by their
PIDs on exit. Clients (``srun``, ``sbatch``, ``sinfo``, the ``tools/slurm_*.sh``
scripts) must run with :attr:`LocalSlurmCluster.env` (it sets ``SLURM_CONF``)::

    with LocalSlurmCluster('/tmp/slurm') as cluster:
        subprocess.run(['srun', '-p', cluster.partition, '-n', '2', 'hostname'],
                       env=cluster.env, check=True)

Needs Debian's ``slurm-wlm`` (22.05: ``tools/install.sh`` installs it as root)
and root rights (slurmd starts job steps as the submitting user).
"""

import os
import os.path as osp
import shutil
import socket
import subprocess
import time
from typing import Dict, List, Optional

SLURM_PROGRAMS = ('slurmctld', 'slurmd', 'srun', 'sinfo', 'scancel')


def missing_slurm_programs() -> List[str]:
    """The programs of :data:`SLURM_PROGRAMS` that are not on ``PATH``
    (``/usr/sbin`` included, where Debian puts the daemons)."""
    path = os.environ.get('PATH', '') + os.pathsep + '/usr/sbin:/sbin'
    return [name for name in SLURM_PROGRAMS if not shutil.which(name, path=path)]


def require_slurm() -> None:
    """Raise ``RuntimeError`` saying how to install Slurm when it is missing."""
    missing = missing_slurm_programs()
    if missing:
        raise RuntimeError(
            f'Slurm is not installed ({", ".join(missing)} not found). The Slurm '
            'tests start their own slurmctld + slurmd on 127.0.0.1: install '
            "Debian's slurm-wlm, e.g. `bash tools/install.sh` as root or "
            '`apt-get install slurm-wlm`.'
        )
    if os.geteuid() != 0:
        raise RuntimeError(
            'the local Slurm cluster needs root (slurmd runs job steps as the '
            'submitting user and slurmctld as SlurmUser=root): run the Slurm '
            'tests as root, e.g. in the project container'
        )


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _free_ports(count: int) -> List[int]:
    ports: List[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class LocalSlurmCluster:
    """slurmctld + slurmd for this host only, configured under ``root``.

    Args:
        root: folder for ``slurm.conf``, state, spool and logs (created).
        partition: name of the (default) partition holding this node.
        cpus: CPUs of the node; default ``max(2, os.cpu_count())`` so that
            two one-CPU tasks always fit (``SlurmdParameters=config_overrides``
            lets the node report the configured values).
        real_memory: RealMemory of the node in MB (memory is not scheduled).
        start_timeout: seconds to wait for the node to become idle.
    """

    def __init__(
        self,
        root: str,
        partition: str = 'cfmm',
        cpus: Optional[int] = None,
        real_memory: int = 512,
        start_timeout: float = 60.0,
    ) -> None:
        self.root = osp.abspath(root)
        self.partition = partition
        self.cpus = cpus or max(2, os.cpu_count() or 1)
        self.real_memory = real_memory
        self.start_timeout = start_timeout
        self.hostname = socket.gethostname().split('.')[0]
        self.conf_path = osp.join(self.root, 'slurm.conf')
        self.ctld_port, self.slurmd_port = _free_ports(2)
        self._procs: Dict[str, subprocess.Popen] = {}
        self._log_files: list = []

    # configuration -------------------------------------------------------
    @property
    def env(self) -> Dict[str, str]:
        """``os.environ`` for Slurm clients of this cluster: ``SLURM_CONF`` set,
        ``SLURM_*`` job variables of any enclosing allocation removed."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(('SLURM_', 'SBATCH_', 'SRUN_', 'SALLOC_'))
        }
        env['SLURM_CONF'] = self.conf_path
        env['PATH'] = env.get('PATH', '') + os.pathsep + '/usr/sbin:/sbin'
        return env

    def path(self, *parts: str) -> str:
        return osp.join(self.root, *parts)

    def slurm_conf(self) -> str:
        """Text of ``slurm.conf``: one node at 127.0.0.1, no accounting."""
        host, p = self.hostname, self.path
        lines = [
            'ClusterName=cfmmtest',
            f'SlurmctldHost={host}(127.0.0.1)',
            f'SlurmctldPort={self.ctld_port}',
            f'SlurmdPort={self.slurmd_port}',
            'SlurmUser=root',
            'SlurmdUser=root',
            'AuthType=auth/none',
            'CredType=cred/none',
            'MpiDefault=none',
            'ProctrackType=proctrack/linuxproc',
            'TaskPlugin=task/none',
            'SwitchType=switch/none',
            'SchedulerType=sched/builtin',
            'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_CPU',
            'SlurmdParameters=config_overrides',
            'ReturnToService=2',
            'AccountingStorageType=accounting_storage/none',
            'JobAcctGatherType=jobacct_gather/none',
            'JobCompType=jobcomp/none',
            'MailProg=/bin/true',
            'SlurmctldTimeout=30',
            'SlurmdTimeout=30',
            'InactiveLimit=0',
            'KillWait=5',
            'MinJobAge=30',
            f'StateSaveLocation={p("state")}',
            f'SlurmdSpoolDir={p("spool")}',
            f'SlurmctldPidFile={p("slurmctld.pid")}',
            f'SlurmdPidFile={p("slurmd.pid")}',
            f'SlurmctldLogFile={p("slurmctld.log")}',
            f'SlurmdLogFile={p("slurmd.log")}',
            'SlurmctldDebug=info',
            'SlurmdDebug=info',
            f'NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} '
            f'CPUs={self.cpus} RealMemory={self.real_memory} State=UNKNOWN',
            f'PartitionName={self.partition} Nodes={host} Default=YES '
            'MaxTime=INFINITE OverSubscribe=YES State=UP',
        ]
        return '\n'.join(lines) + '\n'

    # daemons -------------------------------------------------------------
    def _spawn(self, name: str, args: List[str]) -> None:
        out = open(self.path(f'{name}.stdout'), 'w')
        self._log_files.append(out)
        self._procs[name] = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.root,
            start_new_session=True,
        )

    def _tail(self, name: str, lines: int = 30) -> str:
        text = ''
        for suffix in ('.log', '.stdout'):
            file = self.path(name + suffix)
            if osp.isfile(file):
                with open(file, errors='replace') as f:
                    text += f'--- {file}\n' + ''.join(f.readlines()[-lines:])
        return text

    def node_state(self) -> str:
        """The node's state as ``sinfo`` reports it ('' while unreachable)."""
        result = subprocess.run(
            ['sinfo', '-h', '-N', '-n', self.hostname, '-o', '%T'],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=30,
        )
        return result.stdout.strip() if result.returncode == 0 else ''

    def start(self) -> 'LocalSlurmCluster':
        """Write the configuration, start both daemons, wait for an idle node."""
        require_slurm()
        for sub in ('state', 'spool'):
            os.makedirs(self.path(sub), exist_ok=True)
        with open(self.conf_path, 'w') as f:
            f.write(self.slurm_conf())
        try:
            self._spawn('slurmctld', ['slurmctld', '-D', '-i', '-f', self.conf_path])
            self._spawn('slurmd', ['slurmd', '-D', '-f', self.conf_path, '-N', self.hostname])
            deadline = time.monotonic() + self.start_timeout
            state = ''
            while time.monotonic() < deadline:
                for name, proc in self._procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f'{name} exited with {proc.returncode} while the '
                            f'local Slurm cluster started:\n{self._tail(name)}'
                        )
                state = self.node_state()
                if state == 'idle':
                    return self
                time.sleep(0.5)
            raise RuntimeError(
                f'node {self.hostname} is not idle after {self.start_timeout:.0f}'
                f' s (sinfo state {state!r}):\n{self._tail("slurmctld")}\n'
                f'{self._tail("slurmd")}'
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop slurmd and slurmctld by PID."""
        ctld = self._procs.get('slurmctld')
        if ctld is not None and ctld.poll() is None:
            subprocess.run(
                ['scancel', '--full', f'--partition={self.partition}'],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
        for name in ('slurmd', 'slurmctld'):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        for f in self._log_files:
            f.close()
        self._log_files = []

    def __enter__(self) -> 'LocalSlurmCluster':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
