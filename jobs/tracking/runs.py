"""MLflow for every job: where runs go, failing fast when the server is away, resuming runs.

Embedded default: a SQLite store and an artifact folder under the work directory. A job
honours MLFLOW_TRACKING_URI (a server started by `pul mlflow serve` or any other).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Param

from jobs.stopping import Stopped

log = logging.getLogger(__name__)
RUN_ID_FILE = "mlflow_run.json"


class TrackingError(Exception):
    """MLflow cannot be used: the server is unreachable or the run is inconsistent."""


def resolve_uri(explicit: str, work: Path) -> str:
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    work.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(work / 'mlflow.db').resolve()}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail at the start of a job, not after hours of training."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            if reply.status != 200:
                raise TrackingError(f"MLflow server at {uri} answered {reply.status} to /health")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(f"MLflow tracking server at {uri} is unreachable ({reason})") from None


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        # keep artifacts beside the database, not in ./mlruns of whatever the cwd was
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def open_run(
    uri: str, experiment: str, run_dir: Path, run_name: str, tags: dict[str, str]
) -> tuple[MlflowClient, str]:
    """Create the job's run, or reopen the one a previous attempt in `run_dir` started."""
    check_reachable(uri)
    client = MlflowClient(uri)
    marker = run_dir / RUN_ID_FILE
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("tracking_uri") == uri:
            client.update_run(saved["run_id"], status="RUNNING")
            log.info("resuming MLflow run %s", saved["run_id"])
            return client, saved["run_id"]
    run = client.create_run(experiment_id(client, experiment, uri), run_name=run_name, tags=tags)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"run_id": run.info.run_id, "tracking_uri": uri}))
    return client, run.info.run_id


@contextmanager
def tracked_run(
    uri: str, experiment: str, run_dir: Path, run_name: str, tags: dict[str, str]
) -> Iterator[tuple[MlflowClient, str]]:
    """`open_run`, and the run ends with the block: FINISHED when it completes, FAILED when
    it raises, KILLED when it is interrupted (Ctrl-C, SIGTERM, sys.exit). Every job opens
    its runs this way, so no run is left RUNNING by a job that stopped."""
    client, run_id = open_run(uri, experiment, run_dir, run_name, tags)
    with ended(client, run_id):
        yield client, run_id


@contextmanager
def ended(client: MlflowClient, run_id: str) -> Iterator[None]:
    """End the run `run_id` when the block ends, with the status that says how it ended.

    A SIGTERM (`Stopped`) leaves the block as SystemExit(143): the run is KILLED and the
    process exits as a terminated one should, also where nobody catches `Stopped`."""
    try:
        with _sigterm_raises():
            yield
    except Stopped as stopped:
        _terminate(client, run_id, "KILLED")
        raise SystemExit(stopped.exit_code) from None
    except BaseException as err:
        _terminate(client, run_id, end_status(err))
        raise
    client.set_terminated(run_id, status="FINISHED")


def end_status(err: BaseException) -> str:
    """FAILED for an error of the job itself (an Exception); KILLED for a stop from outside:
    KeyboardInterrupt, `Stopped`, SystemExit (how the training runner and Ray's driver
    handler turn a stop signal into an exit)."""
    return "FAILED" if isinstance(err, Exception) else "KILLED"


def _terminate(client: MlflowClient, run_id: str, status: str) -> None:
    try:
        client.set_terminated(run_id, status=status)
    except Exception as err:  # the job's own error matters more than the bookkeeping's
        log.warning("could not mark MLflow run %s %s: %s", run_id, status, err)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Stopped` instead of killing the process on the
    spot (the default), so `ended` sees it. The exception is jobs.stopping's, so the
    training runner's own handling (end the workers, say what is kept) still applies inside;
    a second SIGTERM is then ignored, not allowed to cut that short. A handler someone else
    installed (Ray's, submitit's, an outer run's) is left in place, and only ours is undone
    afterwards. Python runs handlers in the main thread only."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def raise_stopped(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped(signum)  # unwinds like Ctrl-C, so the run is marked before the exit

    signal.signal(signal.SIGTERM, raise_stopped)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) in (raise_stopped, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Flattened config as params (MLflow params are write-once: skip ones already set)."""
    existing = client.get_run(run_id).data.params
    flat = [Param(k, str(v)[:500]) for k, v in _flatten(params).items() if k not in existing]
    for start in range(0, len(flat), 100):  # log_batch takes at most 100 params per call
        client.log_batch(run_id, params=flat[start : start + 100])


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding jobs/, pul/, shards/: a git checkout when run from source."""
UNTRACKED_CODE = (".py", ".yaml", ".yml")
"""Untracked files that count as code (a new module, a new preset); other untracked files
(outputs, notes) do not change the version."""


def code_version(root: Path = PACKAGE_ROOT) -> str:
    """The code that runs: the commit, plus a hash of every uncommitted change to it.

    `git describe --dirty` names every uncommitted edit alike, so a step done with one edit
    would be reused for another. Here the hash covers the current bytes of every changed
    tracked file and every untracked, non-ignored .py/.yaml file: two different edits give
    two versions, and undoing an edit gives the commit's version back. Outside a git
    checkout (an installed package), the package version.
    """
    try:
        head = _git(root, "rev-parse", "--show-toplevel", "HEAD").split("\n")
        if len(head) != 2 or Path(head[0]).resolve() != root.resolve():
            raise OSError("not the package's own checkout")  # e.g. a venv inside a repo
        changed = _changed_files(_git(root, "status", "--porcelain", "-z", "--untracked-files=all"))
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"pul-{version('pul')}"
    commit = head[1][:12]
    if not changed:
        return commit
    return f"{commit}-dirty-{_digest(root, changed)[:10]}"


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip("\n")


def _changed_files(status: str) -> list[str]:
    """Paths (relative to the checkout) that differ from the commit, from `status -z`."""
    fields = iter(status.split("\0"))
    changed = []
    for entry in fields:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            changed.append(next(fields, ""))  # the old name of a rename: it is gone, too
        if code == "??" and not path.endswith(UNTRACKED_CODE):
            continue
        changed.append(path)
    return sorted(p for p in changed if p)


def _digest(root: Path, paths: list[str]) -> str:
    """sha256 over each path and its current bytes (or its absence)."""
    digest = hashlib.sha256()
    for path in paths:
        file = root / path
        digest.update(path.encode() + b"\0")
        digest.update(file.read_bytes() if file.is_file() else b"<gone>")
        digest.update(b"\0")
    return digest.hexdigest()
