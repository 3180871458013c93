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

    def add(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stamp = int(time.time() * 1000)
        for key, value in values.items():
            self.pending.append(Metric(key, float(value), stamp, step))

    def tag(self, key: str, value: str) -> None:
        if self.enabled:
            self.client.set_tag(self.run_id, key, value)

    def flush(self) -> None:
        if self.enabled and self.pending:
            # log_batch takes at most 1000 metrics per call
            for start in range(0, len(self.pending), 1000):
                self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
            self.pending = []
