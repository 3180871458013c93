"""Rank 0's metric stream: into the job's MLflow run, or into a JSON-lines file without MLflow.

Values may be tensors still on the device: they stay there until `flush` reads all of them
to the host in one transfer (one sync per log interval, not one per value and step). MLflow
gets them in batches, not one call per value. Without an MLflow run (launcher=local with
tracking off, or a bare GPU image) the same values go to RUN_DIR/metrics.jsonl, one line
per step: {"step": 12, "loss": 0.61, ...}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

METRICS_FILE = "metrics.jsonl"


class MetricLogger:
    def __init__(
        self, target: dict[str, str] | None, enabled: bool, run_dir: str | Path | None = None
    ) -> None:
        """`target`: {"tracking_uri", "run_id"} of the MLflow run to log into; None writes
        RUN_DIR/metrics.jsonl instead (nothing at all when run_dir is None too)."""
        self.enabled = enabled and (target is not None or run_dir is not None)
        self.sink = None
        if self.enabled:
            self.sink = _MlflowSink(target) if target else _FileSink(Path(run_dir) / METRICS_FILE)
        self.pending: list[tuple[int, str, Any]] = []
        self.logged_through = -1
        """Steps up to this one are logged already (an earlier attempt logged them)."""

    def add(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled or step <= self.logged_through:
            return
        self.pending.extend((step, key, value) for key, value in values.items())

    def resume(self, start: int) -> None:
        """A run resumed at step `start`: record that (metric resumed_at_step), and log no
        step twice. An earlier attempt may have logged steps after the checkpoint it was
        stopped past; those keep their first values and this attempt logs from the next."""
        if not self.enabled:
            return
        self.add(start, {"resumed_at_step": start})
        self.logged_through = self.sink.last_step("loss")

    def tag(self, key: str, value: str) -> None:
        if self.enabled:
            self.sink.tag(key, value)

    def flush(self) -> None:
        if not (self.enabled and self.pending):
            return
        values = _to_host([value for _, _, value in self.pending])
        keys = [(step, key) for step, key, _ in self.pending]
        rows = [(step, key, value) for (step, key), value in zip(keys, values, strict=True)]
        self.sink.write(rows)
        self.pending = []


def _to_host(values: list[Any]) -> list[float]:
    """Floats of a mix of numbers and 0-d tensors: the tensors cross in one transfer."""
    tensors = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
    out = [float(v) if not isinstance(v, torch.Tensor) else 0.0 for v in values]
    if tensors:
        stacked = torch.stack([values[i].detach().float().reshape(()) for i in tensors])
        for i, value in zip(tensors, stacked.cpu().tolist(), strict=True):
            out[i] = value
    return out


class _MlflowSink:
    def __init__(self, target: dict[str, str]) -> None:
        from mlflow import MlflowClient  # not needed (nor installed) on a bare GPU image

        self.client = MlflowClient(target["tracking_uri"])
        self.run_id = target["run_id"]

    def last_step(self, key: str) -> int:
        history = self.client.get_metric_history(self.run_id, key)
        return max((m.step for m in history), default=-1)

    def tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def write(self, rows: list[tuple[int, str, float]]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, step) for step, key, value in rows]
        for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 per call
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])


class _FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tags_path = path.with_name("tags.json")

    def last_step(self, key: str) -> int:
        last = -1
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if key in row:
                    last = max(last, int(row["step"]))
        return last

    def tag(self, key: str, value: str) -> None:
        tags = json.loads(self.tags_path.read_text()) if self.tags_path.exists() else {}
        tags[key] = value
        self.tags_path.write_text(json.dumps(tags, indent=1))

    def write(self, rows: list[tuple[int, str, float]]) -> None:
        by_step: dict[int, dict[str, float]] = {}
        for step, key, value in rows:
            by_step.setdefault(step, {})[key] = value
        with self.path.open("a") as handle:
            for step in sorted(by_step):
                handle.write(json.dumps({"step": step, **by_step[step]}) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of RUN_DIR/metrics.jsonl (a run logged without MLflow), in order."""
    path = Path(run_dir) / METRICS_FILE
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
