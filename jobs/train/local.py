"""Training without Ray: the loop in this process, alone or as one rank of torchrun.

`fit_local` is what `train.launcher=local` runs: the same stage, loop, checkpoints and
resume as on Ray Train, in the calling process. Under `torchrun --nproc_per_node N` every
process calls it and becomes one DDP rank (sessions.LocalSession). Stop signals end the
run with the same one line and exit code as a Ray run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from jobs.stopping import Stopped, stop_signals_raise
from jobs.train.checkpoints import checkpoint_root, complete_checkpoints
from jobs.train.config import TrainConfig
from jobs.train.loop import Stage, local_loop
from jobs.train.outcome import TrainingError, clear_outcome, raise_if_stopped, stopped_line
from jobs.train.sessions import distributed_place


def fit_local(
    stage: Stage,
    cfg: TrainConfig,
    run_dir: Path,
    mlflow_target: dict[str, str] | None,
    label: str = "train",
) -> Path:
    """Train to `cfg.steps` in this process; the folder of the final checkpoint. Without
    `mlflow_target` the metrics go to RUN_DIR/metrics.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rank = distributed_place()[0]
    if rank == 0:
        clear_outcome(run_dir)
    config: dict[str, Any] = {
        "stage": stage,
        "train": cfg,
        "mlflow": mlflow_target,
        "run_dir": str(run_dir.resolve()),
        "label": label,
    }
    with stop_signals_raise():
        try:
            local_loop(config)
        except Stopped as stopped:
            if rank == 0:
                print(stopped_line(run_dir, cfg), file=sys.stderr, flush=True)
            raise SystemExit(stopped.exit_code) from None
    raise_if_stopped(run_dir)
    kept = complete_checkpoints(checkpoint_root(run_dir))
    if not kept or kept[-1][0] != cfg.steps:
        raise TrainingError(f"training ended at step {kept[-1][0] if kept else 0} of {cfg.steps}")
    return kept[-1][1]
