"""How a training run ended, read from its run folder: the same for every launcher.

Rank 0 leaves two files behind (loop.py): `progress.json` (the last finished step) and, when
the loss turned non-finite, `stopped.json`. The driver turns them into the job's error, or
into the one line a stopped run prints.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobs.train.checkpoints import checkpoint_root, complete_checkpoints
from jobs.train.config import TrainConfig
from jobs.train.loop import PROGRESS_FILE, STOP_FILE


class TrainingError(Exception):
    """Training stopped without a usable result (non-finite loss, repeated failures)."""


def clear_outcome(run_dir: Path) -> None:
    """Before a (re)start: the files of an earlier attempt say nothing about this one."""
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)


def raise_if_stopped(run_dir: Path) -> None:
    """The job's error when the loss turned non-finite (every rank stopped there)."""
    stop_file = run_dir / STOP_FILE
    if stop_file.exists():
        stop = json.loads(stop_file.read_text())
        raise TrainingError(
            f"loss became {stop['loss']} at step {stop['step']}; training stopped on every rank "
            "(try a lower train.lr)"
        )


def stopped_line(run_dir: Path, cfg: TrainConfig) -> str:
    """The one line a stopped run prints: the step it reached, the checkpoint it keeps."""
    kept = complete_checkpoints(checkpoint_root(run_dir))
    kept_step = kept[-1][0] if kept else 0
    try:
        reached = int(json.loads((run_dir / PROGRESS_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        reached = 0
    reached = max(reached, kept_step)
    if not kept:
        return (
            f"pul: stopped at step {reached}; no checkpoint yet in {run_dir} (the first is "
            f"saved at step {min(cfg.checkpoint_every, cfg.steps)}); rerun the same command "
            "to start again"
        )
    return (
        f"pul: stopped at step {reached}; checkpoint of step {kept_step} kept in {run_dir}; "
        "rerun the same command to resume"
    )
