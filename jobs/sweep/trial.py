"""One trial of a sweep: stage 3 trained at one point of the space, scored, reported.

Ray Train V2's pattern: the trial is a plain Tune function that builds and fits its own
TorchTrainer (through `run_stage`, so each trial is an ordinary, resumable training run
with its own MLflow run, nested under the sweep's). While it trains, rank 0 validates and
relays `val_auc` to Tune (relay.py), where ASHA may stop it; a trial that finishes scores
its tracker on the benchmark and reports the AUC.

Its run folder is named after Tune's trial id, which a restored sweep keeps: an interrupted
trial, started again, finds its folder and resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from jobs.evaluation.evaluate import EvalRequest, evaluate
from jobs.pipeline.run import PARENT
from jobs.sweep.config import SweepConfig
from jobs.sweep.relay import TuneRelay, ValidatedStage
from jobs.sweep.space import ARM_PATHS, arm_settings, with_values
from jobs.sweep.validation import HeldOutAUC
from jobs.train.job import run_stage
from jobs.train.stages import STAGES, check_data
from jobs.train.tc import TCConfig

SWEEP_TAG = "pul.sweep_run"
"""The sweep's MLflow run id, on every trial's run and on the registered tracker."""
POINT_FILE = "point.json"
"""The trial's searched values, in its run folder."""


def trial_dir(folder: str | Path, trial_id: str) -> Path:
    return Path(folder) / f"trial-{trial_id}"


def trial_config(sweep: SweepConfig, point: dict[str, Any], uri: str) -> TCConfig:
    """The trial's stage-3 config: the sweep's tc at `point` (its arm's settings included),
    on its arm's data and init, else the sweep's."""
    settings = arm_settings(sweep.arms, point)
    paths = {key: settings.pop(key, getattr(sweep, key)) for key in ARM_PATHS}
    cfg = with_values(sweep.tc, settings)
    return dataclasses.replace(cfg, **paths, experiment=sweep.experiment, tracking_uri=uri)


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> None:
    """Tune's trainable: train stage 3 at this point, score it, report to Tune."""
    from ray import tune

    sweep: SweepConfig = context["sweep"]
    trial_id = tune.get_context().get_trial_id()
    cfg = trial_config(sweep, config, context["uri"])
    run_dir = trial_dir(context["folder"], trial_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / POINT_FILE).write_text(json.dumps(config))
    parent = context["parent"]
    tags = {
        PARENT: parent,
        SWEEP_TAG: parent,
        "pul.trial": trial_id,
        "pul.code_version": context["code"],
    }
    check_data("tc", cfg.data)
    stage = STAGES["tc"][1](cfg)
    if cfg.train.validate_every:
        stage = ValidatedStage(stage, context["validator"], TuneRelay())
    model = run_stage("tc", stage, cfg, cfg.data, run_dir, tags)
    request = EvalRequest(
        benchmark=sweep.benchmark_format,
        root=sweep.benchmark,
        out=str(run_dir / "eval"),
        models={"trial": str(model)},
        sequences=list(sweep.sequences),
        workers=1,
    )
    score = evaluate(request)["trial"]
    run_id = (run_dir / "DONE").read_text().strip()
    final = {
        "step": cfg.train.steps,
        "auc": float(score.auc),
        "precision_20": float(score.precision_20),
        "run_id": run_id,
    }
    if cfg.train.validate_every:  # Tune wants the metric it compares in every report
        final["val_auc"] = _last_value(context["uri"], run_id, "val_auc")
    tune.report(final)


def validator(sweep: SweepConfig) -> HeldOutAUC:
    """The sweep's validation set (built once, on the driver, and shipped to the trials)."""
    val = sweep.validation
    return HeldOutAUC.on_benchmark(
        val.root or sweep.benchmark,
        val.format or sweep.benchmark_format,
        val.sequences,
        val.frames,
    )


def _last_value(uri: str, run_id: str, key: str) -> float:
    from mlflow import MlflowClient

    history = MlflowClient(uri).get_metric_history(run_id, key)
    return float(max(history, key=lambda m: m.step).value)
