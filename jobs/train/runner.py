"""Running a stage's training loop on Ray Train: scaling, failures, checkpoints, resume.

A run lives in one folder. Ray Train persists its checkpoints under `RUN_DIR/ray/train`;
starting the same run folder again resumes from the newest complete one (loop.py says how it
is found), so a crashed or killed job is rerun, not restarted.

Stopping: Ctrl-C (SIGINT), SIGTERM or SIGHUP to the driver ends the Ray workers (the local
Ray cluster, or this job's actors on a shared one), prints one line saying which checkpoint
is kept, and exits with 128 + the signal number (130, 143, 129). Ray Train fits in a helper
thread so that its own SIGINT handler, which aborts the run and exits 1 with a traceback (and
overrides a launcher's "ignore SIGINT"), is never installed; the main thread waits for it.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import ray
from ray.train import (
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    ScalingConfig,
    WorkerGroupError,
)
from ray.train.torch import TorchTrainer

from jobs.errors import JobError
from jobs.runtime import connect_ray
from jobs.stopping import Stopped, reclaim_stop_signals, stop_handlers, stop_signals_raise
from jobs.train.checkpoints import checkpoint_root
from jobs.train.config import TrainConfig
from jobs.train.local import fit_local
from jobs.train.loop import Stage, train_loop
from jobs.train.outcome import TrainingError, clear_outcome, raise_if_stopped, stopped_line
from shards.errors import ShardError

__all__ = ["TrainingError", "fit", "stopped_line"]
log = logging.getLogger(__name__)


def fit(
    stage: Stage,
    cfg: TrainConfig,
    run_dir: Path,
    mlflow_target: dict[str, str] | None,
    label: str = "train",
) -> Path:
    """Train to `cfg.steps` and return the folder of the final checkpoint; `label` names
    the stage in the progress lines. train.launcher=local trains in this process instead."""
    if cfg.launcher == "local":
        return fit_local(stage, cfg, run_dir, mlflow_target, label)
    handlers = stop_handlers()
    connect_ray()
    reclaim_stop_signals(handlers)  # ray.init's own would make SIGTERM exit 15 at once
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
            name=checkpoint_root(run_dir).name,
            storage_path=str(checkpoint_root(run_dir).parent.resolve()),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    clear_outcome(run_dir)
    try:
        result = _fit_until_stopped(trainer, run_dir, cfg)
    except WorkerGroupError as err:
        # bad data or settings met on a worker (too many damaged samples): the user's
        # one-line error, not Ray's traceback
        user = [e for e in err.worker_failures.values() if isinstance(e, (ShardError, JobError))]
        if not user:
            raise
        raise user[0] from None
    raise_if_stopped(run_dir)
    return _final_checkpoint(result.metrics or {}, result.checkpoint, cfg)


def _fit_until_stopped(trainer: TorchTrainer, run_dir: Path, cfg: TrainConfig) -> Any:
    """`trainer.fit()`, or on a stop signal: end the workers, say what is kept, exit."""
    if threading.current_thread() is not threading.main_thread():
        return trainer.fit()  # a Tune trial: its runner's main thread receives the signals
    outcome: dict[str, Any] = {}

    def fit_in_thread() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as err:  # handed to the main thread, raised there
            outcome["error"] = err

    with stop_signals_raise():
        thread = threading.Thread(target=fit_in_thread, name="pul-train-fit", daemon=True)
        try:
            thread.start()
            while thread.is_alive():
                thread.join(timeout=0.5)
        except Stopped as stopped:
            _end_workers()
            print(stopped_line(run_dir, cfg), file=sys.stderr, flush=True)
            raise SystemExit(stopped.exit_code) from None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _end_workers() -> None:
    """Ray Train's workers end with the driver's Ray session: a local cluster is shut down
    whole; on a shared cluster the job's actors (controller, workers) are ended by Ray."""
    try:
        ray.shutdown()
    except Exception as err:  # stopping anyway; say why it may not have been clean
        log.warning("Ray did not shut down cleanly: %s: %s", type(err).__name__, err)


def _final_checkpoint(metrics: dict[str, Any], checkpoint: Any, cfg: TrainConfig) -> Path:
    if checkpoint is None:
        raise TrainingError("training ended without a checkpoint")
    if metrics.get("step") != cfg.steps:
        raise TrainingError(f"training ended at step {metrics.get('step')} of {cfg.steps}")
    return Path(checkpoint.path)
