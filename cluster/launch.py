"""Submitting a job: submitit to Slurm (or a local process), a Ray cluster over the nodes.

`submit(argv, profile, entry)` sends `entry(argv)` (the `pul` command line, in practice) to
run on node 0 of an allocation shaped by `profile`, with Ray spread over all its nodes. The
submitted callable is Checkpointable: on Slurm's timeout or preemption signal submitit asks
it for a checkpoint, and it resubmits itself unchanged; the jobs keep their own state on
shared storage (checkpoints, finished pipeline steps), so the requeued run continues.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from cluster.profile import Profile
from cluster.ray_nodes import node_name, run_on_ray_cluster


class SubmitError(Exception):
    """The scheduler refused the job (its reason is in the message)."""


class JobFailed(RuntimeError):
    """The job's command ended with a non-zero status (marks the Slurm job FAILED)."""


@dataclass
class Submitted:
    job_id: str
    executor: str
    folder: str
    argv: list[str]
    profile: dict[str, Any]
    nodes: int
    submitted_at: float

    @property
    def stdout(self) -> Path:
        return Path(self.folder) / f"{self.job_id}_0_log.out"

    @property
    def stderr(self) -> Path:
        return Path(self.folder) / f"{self.job_id}_0_log.err"


class ClusterJob(Checkpointable):
    """What runs in every task of the allocation: Ray on all nodes, `entry(argv)` on node 0."""

    def __init__(
        self, entry: Callable[[list[str]], int], argv: list[str], profile: Profile, cwd: str
    ) -> None:
        self.entry, self.argv, self.profile, self.cwd = entry, argv, profile, cwd

    def __call__(self) -> int:
        env = submitit.JobEnvironment()
        os.chdir(self.cwd)
        if self.profile.mlflow_uri:
            os.environ["MLFLOW_TRACKING_URI"] = self.profile.mlflow_uri
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        print(
            f"pul job {env.job_id} task {env.global_rank}/{env.num_tasks} on {env.hostname} "
            f"(restart {restarts}): pul {' '.join(self.argv)}",
            flush=True,
        )
        code = run_on_ray_cluster(
            self._run_entry,
            rank=env.node,
            nodes=_node_names(env.num_nodes),
            folder=Path(env.paths.folder),
            attempt=f"{env.job_id}-{restarts}",
            cpus=self.profile.cpus_per_node,
            gpus=self.profile.gpus_per_node,
            object_store_gb=self.profile.ray_object_store_gb,
            join_timeout=self.profile.ray_join_timeout_s,
        )
        return 0 if code is None else code

    def _run_entry(self) -> int:
        code = int(self.entry(list(self.argv)) or 0)
        if code != 0:
            raise JobFailed(f"pul {' '.join(self.argv)} exited with status {code}")
        return code

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """On Slurm's signal: requeue as is; the job resumes from its own checkpoints."""
        print("pul: time limit or preemption signal: requeueing", flush=True)
        return DelayedSubmission(self, *args, **kwargs)


def _node_names(count: int) -> list[str]:
    """The allocation's node names, in Slurm's order (node 0 first)."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if nodelist:
        try:
            names = subprocess.run(
                ["scontrol", "show", "hostnames", nodelist],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.split()
            if len(names) == count:
                return names
        except (OSError, subprocess.SubprocessError):
            pass
    if count == 1:
        return [node_name()]
    # without scontrol the names are unknown: the join wait will report them as missing
    return [f"node{i}" for i in range(count)]


def make_executor(profile: Profile, folder: Path) -> submitit.Executor:
    python = profile.python or sys.executable
    if profile.executor == "local":
        executor: submitit.Executor = submitit.LocalExecutor(folder=folder, python=python)
        executor.update_parameters(timeout_min=profile.time_min, nodes=1, tasks_per_node=1)
        return executor
    executor = submitit.SlurmExecutor(folder=folder, python=python)
    params: dict[str, Any] = {
        "nodes": profile.nodes,
        "ntasks_per_node": 1,
        "cpus_per_task": profile.cpus_per_node,
        "time": profile.time_min,
        "signal_delay_s": profile.signal_delay_s,
        "setup": list(profile.setup),
        "additional_parameters": {"requeue": True, **profile.sbatch},
    }
    if profile.gpus_per_node:
        params["gpus_per_node"] = profile.gpus_per_node
    if profile.mem_gb:
        params["mem"] = f"{int(profile.mem_gb * 1024)}M"
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            params[key] = getattr(profile, key)
    executor.update_parameters(**params)
    return executor


def submit(
    entry: Callable[[list[str]], int], argv: list[str], profile: Profile, name: str
) -> Submitted:
    folder = Path(profile.storage).resolve() / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    executor = make_executor(profile, folder)
    executor.update_parameters(job_name=name)
    said = io.StringIO()  # submitit prints sbatch's complaint itself; our error carries it
    try:
        with contextlib.redirect_stderr(said):
            job = executor.submit(ClusterJob(entry, argv, profile, os.getcwd()))
    except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError) as err:
        raise SubmitError(f"the scheduler refused the job: {_reason(err)}") from None
    sys.stderr.write(said.getvalue())  # anything else it had to say
    return Submitted(
        job_id=str(job.job_id),
        executor=profile.executor,
        folder=str(folder),
        argv=list(argv),
        profile=dataclasses.asdict(profile),
        nodes=profile.nodes,
        submitted_at=time.time(),
    )


def _reason(err: Exception) -> str:
    """Slurm's own words: the sbatch error lines of the failed submission."""
    text = getattr(err, "output", None) or getattr(err, "stderr", None) or str(err)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return " ".join(errors or lines[-2:]) or str(err)


def dump_record(record: Submitted) -> str:
    return json.dumps(dataclasses.asdict(record))
