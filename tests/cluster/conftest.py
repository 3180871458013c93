"""Fixtures for the tests that need the dev Slurm cluster (cluster/dev/start.sh).

The cluster is found through ``SLURM_CONF`` (``source STATE_DIR/env.sh`` after
``make slurm-up``). Without it the slurm tests skip, saying why; with
``PUL_REQUIRE_SLURM=1`` (what CI sets) they fail instead, so a broken cluster can never
pass CI as a row of skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Terminal job states as sacct prints them (a cancel shows as "CANCELLED by <uid>").
TERMINAL = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
)


def run(cmd: list[str], *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a Slurm client command; on failure the error names the command and its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class DevSlurm:
    """Handle on the running dev cluster; jobs submitted through it are cancelled at teardown."""

    conf: Path
    nodes: list[str]
    submitted: list[str] = field(default_factory=list)

    def sbatch(self, *args: str, check: bool = True) -> subprocess.CompletedProcess | str:
        """``sbatch --parsable ARGS``: the job id, or the process itself when check=False."""
        proc = run(["sbatch", "--parsable", *args], check=check)
        if proc.returncode == 0:
            job_id = proc.stdout.strip().split(";")[0]
            self.submitted.append(job_id)
            if check:
                return job_id
        return proc

    def squeue_state(self, job_id: str) -> str:
        """The job's squeue state (RUNNING, PENDING, ...), "" once it has left the queue."""
        return run(["squeue", "-h", "-j", job_id, "-o", "%T"], check=False).stdout.strip()

    def sacct_state(self, job_id: str, duplicates: bool = False) -> list[str]:
        """sacct states of the job allocation, one per run of it when duplicates=True."""
        cmd = ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]
        if duplicates:
            cmd.append("-D")
        return [s for s in run(cmd).stdout.split("\n") if s]

    def wait_finished(self, job_id: str, timeout: float = 60) -> str:
        """Wait until sacct reports a terminal state for the job; return that state."""

        def done():
            states = self.sacct_state(job_id)
            return states and states[-1].startswith(TERMINAL) and states[-1]

        return wait_until(done, timeout, f"job {job_id} to finish (sacct)")

    def wait_running(self, job_id: str, timeout: float = 60) -> None:
        wait_until(lambda: self.squeue_state(job_id) == "RUNNING", timeout, f"job {job_id} to run")

    def cancel_all(self) -> None:
        live = [j for j in self.submitted if self.squeue_state(j)]
        if live:
            run(["scancel", *live], check=False)


@pytest.fixture(scope="session")
def dev_slurm_session() -> DevSlurm:
    """The dev Slurm cluster, checked once per session: skip (or fail, PUL_REQUIRE_SLURM=1)."""
    required = os.environ.get("PUL_REQUIRE_SLURM") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"{reason} (and PUL_REQUIRE_SLURM=1)", pytrace=False)
        pytest.skip(reason)

    conf = os.environ.get("SLURM_CONF")
    if not conf:
        unavailable(
            "SLURM_CONF is unset: start the dev cluster (`make slurm-up`) and "
            "`source /tmp/pul-slurm/env.sh`"
        )
    if not Path(conf).is_file():
        unavailable(f"SLURM_CONF={conf} does not exist: start the dev cluster (`make slurm-up`)")
    if shutil.which("sinfo") is None:
        unavailable("sinfo is not on PATH: run cluster/dev/install.sh")
    try:
        proc = run(["sinfo", "-h", "-N", "-o", "%N"], check=False, timeout=20)
    except subprocess.TimeoutExpired:
        unavailable(f"sinfo (SLURM_CONF={conf}) timed out after 20 s: is slurmctld up?")
    if proc.returncode != 0:
        unavailable(f"sinfo (SLURM_CONF={conf}) failed: {proc.stderr.strip()}")
    nodes = sorted(set(proc.stdout.split()))
    return DevSlurm(conf=Path(conf), nodes=nodes)


@pytest.fixture
def dev_slurm(dev_slurm_session: DevSlurm):
    """Per test: the cluster handle; the test's leftover jobs are cancelled afterwards."""
    handle = DevSlurm(conf=dev_slurm_session.conf, nodes=dev_slurm_session.nodes)
    yield handle
    handle.cancel_all()
