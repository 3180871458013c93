"""MLflow for every job: where runs go, failing fast when the server is away, resuming runs.

Embedded default: a SQLite store and an artifact folder under the work directory. A job
honours MLFLOW_TRACKING_URI (a server started by `pul mlflow serve` or any other).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Param

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


def code_version() -> str:
    """The git commit of the code (with '-dirty' for local changes), or the package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"pul-{version('pul')}"
