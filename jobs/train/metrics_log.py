"""Rank 0's metric stream into the job's MLflow run, sent in batches, not one call per value."""

from __future__ import annotations

import time
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric


class MetricLogger:
    def __init__(self, target: dict[str, str] | None, enabled: bool) -> None:
        """`target`: {"tracking_uri", "run_id"} of the run to log into; None logs nothing."""
        self.enabled = enabled and target is not None
        self.client = MlflowClient(target["tracking_uri"]) if self.enabled else None
        self.run_id = target["run_id"] if self.enabled else None
        self.pending: list[Metric] = []
        self.logged_through = -1
        """Steps up to this one are in the run already (an earlier attempt logged them)."""

    def add(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled or step <= self.logged_through:
            return
        stamp = int(time.time() * 1000)
        for key, value in values.items():
            self.pending.append(Metric(key, float(value), stamp, step))

    def resume(self, start: int) -> None:
        """A run resumed at step `start`: record that (metric resumed_at_step), and log no
        step twice. An earlier attempt may have logged steps after the checkpoint it was
        stopped past; those keep their first values and this attempt logs from the next."""
        if not self.enabled:
            return
        self.add(start, {"resumed_at_step": start})
        history = self.client.get_metric_history(self.run_id, "loss")
        self.logged_through = max((m.step for m in history), default=-1)

    def tag(self, key: str, value: str) -> None:
        if self.enabled:
            self.client.set_tag(self.run_id, key, value)

    def flush(self) -> None:
        if self.enabled and self.pending:
            # log_batch takes at most 1000 metrics per call
            for start in range(0, len(self.pending), 1000):
                self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
            self.pending = []
