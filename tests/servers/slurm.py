"""A real single-node Slurm cluster on loopback, for the job-array example.

``munged``, ``slurmctld`` and ``slurmd`` (Debian ``munge`` and ``slurm-wlm``)
run as root from a throwaway folder: a generated munge key and socket, a
``slurm.conf`` on free loopback ports, one node (``localhost``) with the
machine's CPUs, no accounting.  Jobs run as root with the submitter's
environment.  Readiness is awaited by polling ``sinfo`` for an idle node; the
daemons are stopped by the PIDs started here.

Never skipped: missing daemons fail with the command that installs them.
Needs root (slurmd starts jobs as their owner), as CI runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .sshd import _free_ports  # several ports free at once

MUNGED = "/usr/sbin/munged"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"

CONFIG = """\
ClusterName=t321
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge/munge.sock
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/builtin
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _require(path: str, package: str) -> None:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: install it with `apt-get install -y {package}` "
                    "(scripts/test.sh does this)", pytrace=False)


def poll(condition: object, what: str, timeout: float = 60.0, every: float = 0.2) -> None:
    """Wait until ``condition()`` is true, checking every ``every`` seconds;
    fail naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
        pause.wait(every)


@dataclass
class SlurmCluster:
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.workdir / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout)

    def log(self, name: str) -> str:
        path = self.workdir / "log" / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(list(args), env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def start(self) -> None:
        for folder in ("state", "spool", "munge", "log"):
            (self.workdir / folder).mkdir()
        munge = self.workdir / "munge"
        munge.chmod(0o700)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._spawn(MUNGED, "-F", "-f", f"--socket={munge}/munge.sock",
                    f"--key-file={key}", f"--log-file={self.workdir}/log/munged.log",
                    f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/seed")
        poll(lambda: (munge / "munge.sock").exists() or self._died(), "munged's socket")
        ctld_port, slurmd_port = _free_ports(2)
        self.conf.write_text(CONFIG.format(dir=self.workdir, ctld_port=ctld_port,
                                           slurmd_port=slurmd_port,
                                           cpus=min(os.cpu_count() or 1, 4)))
        self._spawn(SLURMCTLD, "-D", "-f", str(self.conf), "-i")
        self._spawn(SLURMD, "-D", "-f", str(self.conf), "-N", "localhost")
        poll(lambda: self._idle() or self._died(), "an idle Slurm node")
        if self._died():
            pytest.fail("a Slurm daemon exited: " + self.log("slurmctld.log")
                        + self.log("slurmd.log") + self.log("munged.log"), pytrace=False)

    def _died(self) -> bool:
        return any(p.poll() is not None for p in self.processes)

    def _idle(self) -> bool:
        result = self.run("sinfo", "-h", "-o", "%T", check=False, timeout=20)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def job_state(self, job: str) -> str:
        """``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``, ...; for an array
        job, the states of all its tasks, comma-separated."""
        result = self.run("squeue", "-h", "-j", job, "-o", "%T", check=False)
        out = self.run("scontrol", "-o", "show", "job", job, check=False).stdout
        states = [field.split("=", 1)[1] for line in out.splitlines()
                  for field in line.split() if field.startswith("JobState=")]
        return ",".join(states) or result.stdout.strip()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def slurm_cluster() -> Iterator[SlurmCluster]:
    """Start a cluster for one test (module fixture in the test file)."""
    if os.geteuid() != 0:
        pytest.fail("the Slurm test runs slurmd, which must be root: run it as root (CI "
                    "does)", pytrace=False)
    _require(MUNGED, "munge")
    _require(SLURMCTLD, "slurm-wlm")
    _require(SLURMD, "slurm-wlm")
    workdir = Path(tempfile.mkdtemp(prefix="t321-slurm-"))
    cluster = SlurmCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
