"""Running a stage's training loop on Ray Train: scaling, failures, checkpoints, resume.

A run lives in one folder. Ray Train persists its checkpoints under `RUN_DIR/ray/train`;
starting the same run folder again resumes from the latest one (Train V2 restores a run by
its name and storage path), so a crashed or killed job is rerun, not restarted.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from jobs.runtime import connect_ray
from jobs.train.config import TrainConfig
from jobs.train.loop import STOP_FILE, Stage, train_loop

log = logging.getLogger(__name__)


class TrainingError(Exception):
    """Training stopped without a usable result (non-finite loss, repeated failures)."""


def fit(
    stage: Stage,
    cfg: TrainConfig,
    run_dir: Path,
    mlflow_target: dict[str, str] | None,
    label: str = "train",
) -> Path:
    """Train to `cfg.steps` and return the folder of the final checkpoint; `label` names
    the stage in the progress lines."""
    connect_ray()
    resources: dict[str, float] = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = 1
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "stage": stage,
            "train": cfg,
            "mlflow": mlflow_target,
            "run_dir": str(run_dir.resolve()),
            "label": label,
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.workers, use_gpu=cfg.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name="train",
            storage_path=str((run_dir / "ray").resolve()),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    stop_file = run_dir / STOP_FILE
    stop_file.unlink(missing_ok=True)
    result = trainer.fit()
    if stop_file.exists():
        stop = json.loads(stop_file.read_text())
        raise TrainingError(
            f"loss became {stop['loss']} at step {stop['step']}; training stopped on every rank "
            "(try a lower train.lr)"
        )
    return _final_checkpoint(result.metrics or {}, result.checkpoint, cfg)


def _final_checkpoint(metrics: dict[str, Any], checkpoint: Any, cfg: TrainConfig) -> Path:
    if checkpoint is None:
        raise TrainingError("training ended without a checkpoint")
    if metrics.get("step") != cfg.steps:
        raise TrainingError(f"training ended at step {metrics.get('step')} of {cfg.steps}")
    return Path(checkpoint.path)
