"""How a trial's validation values reach Ray Tune while its Ray Train run is training.

Ray's bridge from Train V2 to Tune is `TuneReportCallback`: created in the trial (it opens
a queue that the trial's Tune session reads), it forwards each `ray.train.report` when the
Train controller runs it as a RunConfig callback. `jobs.train.runner.fit` builds the same
trainer for every job and passes no callbacks, so here rank 0 runs the bridge itself, right
after each validation: the values go through the same queue to the same session, where
Tune's scheduler (ASHA) reads them and may stop the trial. The loop still reports them to
Ray Train through its session (every rank, at the same steps) and logs them to MLflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from jobs.train.loop import Loader, Stage, Validate


class TuneRelay:
    """Sends metrics from a Ray Train worker to the Tune trial that started the run."""

    def __init__(self) -> None:
        from ray.tune.integration.ray_train import TuneReportCallback

        self._bridge = TuneReportCallback()  # in the trial: the queue its session reads

    def send(self, metrics: dict[str, Any]) -> None:
        # Blocks until the trial's session has taken them (a queue of one), which it polls
        # every few seconds at most; a trial stopped here is ended with its workers.
        self._bridge.after_report(run_context=None, metrics=[metrics], checkpoint=None)


class ValidatedStage:
    """A training stage whose rank 0 validates (`validate`, read by the loop) and relays
    each validation's values, with the step, to the Tune trial."""

    def __init__(self, stage: Stage, validator: Validate, relay: TuneRelay) -> None:
        self.stage, self.validator, self.relay = stage, validator, relay

    def validate(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        values = self.validator(model, step)
        self.relay.send({"step": step, **values})
        return values

    # the rest is the stage's own

    def build_model(self) -> torch.nn.Module:
        return self.stage.build_model()

    def batches(
        self, start_step: int, model: torch.nn.Module, loader: Loader
    ) -> Iterator[dict[str, torch.Tensor]]:
        return self.stage.batches(start_step, model, loader)

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.stage.loss(model, batch)

    def export(self, model: torch.nn.Module, folder: str) -> None:
        self.stage.export(model, folder)

    def picture(self, model_file: Path, run_dir: Path) -> Path:
        return self.stage.picture(model_file, run_dir)

    @property
    def resolved(self) -> dict[str, Any]:
        """What the stage derived from its data, for the run's params (job.py logs them)."""
        return getattr(self.stage, "resolved", {})
