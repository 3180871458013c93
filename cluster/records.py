"""What `pul submit` remembers about its jobs, so `pul jobs ID` needs only the id.

One JSON line per submission in $PUL_HOME/jobs.jsonl (default ~/.pul). A test cluster that
is wiped restarts job ids at 1, so the newest record of an id wins.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import submitit

from cluster.launch import Submitted, dump_record


def records_file() -> Path:
    home = Path(os.environ.get("PUL_HOME") or Path.home() / ".pul")
    return home / "jobs.jsonl"


def remember(record: Submitted) -> None:
    path = records_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.write(dump_record(record) + "\n")


def all_records() -> list[Submitted]:
    path = records_file()
    if not path.exists():
        return []
    return [Submitted(**json.loads(line)) for line in path.read_text().splitlines() if line]


def find(job_id: str) -> Submitted | None:
    matches = [r for r in all_records() if r.job_id == str(job_id)]
    return matches[-1] if matches else None


def state(record: Submitted) -> str:
    """Slurm's state (from sacct/squeue through submitit), or a local process's."""
    if record.executor == "slurm":
        job = submitit.SlurmJob(record.folder, record.job_id, tasks=list(range(record.nodes)))
        return job.state
    result = Path(record.folder) / f"{record.job_id}_0_result.pkl"
    if result.exists():
        outcome, _ = submitit.core.utils.pickle_load(result)  # ("success" | "error", ...)
        return "COMPLETED" if outcome == "success" else "FAILED"
    return "RUNNING" if _alive(int(record.job_id)) else "FAILED"


def cancel(record: Submitted) -> None:
    if record.executor == "slurm":
        submitit.SlurmJob(record.folder, record.job_id).cancel(check=True)
    elif _alive(int(record.job_id)):
        os.kill(int(record.job_id), signal.SIGINT)


def log_path(record: Submitted, task: int, stream: str) -> Path:
    suffix = "out" if stream == "out" else "err"
    return Path(record.folder) / f"{record.job_id}_{task}_log.{suffix}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
