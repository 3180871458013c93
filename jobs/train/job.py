"""A training job end to end: run folder, MLflow run, Ray Train fit, model, pictures.

The run folder holds everything a rerun needs to continue: the resolved config (a rerun
with a different one is refused), the MLflow run id (the rerun logs into the same run) and
Ray Train's checkpoints (the rerun resumes from the latest).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from jobs.config import to_dict
from jobs.errors import JobError
from jobs.tracking.runs import code_version, log_params, resolve_uri, tracked_run
from jobs.train.damage import mark_damaged_run
from jobs.train.runner import fit
from jobs.train.sessions import distributed_place
from jobs.train.shared import MODEL_FILE
from jobs.train.stages import (
    CONFIG_FILE,
    DONE_FILE,
    STAGES,
    check_data,
    claim_run_dir,
)
from jobs.train.supervised import SupervisedConfig
from shards.manifest import read_manifest

__all__ = ["STAGES", "check_data", "run_stage", "train_stage", "train_supervised"]
log = logging.getLogger(__name__)


def train_supervised(cfg: SupervisedConfig, run_dir: str | Path) -> Path:
    """Train the supervised baseline into `run_dir`; returns the model file."""
    return train_stage("supervised", cfg, run_dir)


def train_stage(
    name: str, cfg: Any, run_dir: str | Path, tags: dict[str, str] | None = None
) -> Path:
    """Train stage `name` with `cfg` into `run_dir` (resuming it); returns the model file.

    `tags` go on the MLflow run (the pipeline nests stage runs under its own this way)."""
    if not cfg.data:
        raise JobError("no training data: set data=DIR (a shard folder)")
    # absolute, because Ray workers run in folders of their own
    cfg = dataclasses.replace(cfg, data=str(Path(cfg.data).resolve()))
    check_data(name, cfg.data)
    if getattr(cfg, "init", ""):
        cfg = dataclasses.replace(cfg, init=str(Path(cfg.init).resolve()))
    return run_stage(name, STAGES[name][1](cfg), cfg, cfg.data, Path(run_dir), tags)


def run_stage(
    name: str, stage: Any, cfg: Any, data: str, run_dir: Path, tags: dict[str, str] | None = None
) -> Path:
    manifest = read_manifest(data)  # refuses a missing or unfinished shard set up front
    if cfg.train.launcher == "local" and distributed_place()[0] != 0:
        # one rank of torchrun: rank 0 keeps the run folder and the MLflow run
        fit(stage, cfg.train, run_dir, None, label=name)
        return run_dir / MODEL_FILE
    claim_run_dir(run_dir, cfg)
    if (run_dir / DONE_FILE).exists():
        log.info("%s already finished; its model is %s", run_dir, run_dir / MODEL_FILE)
        return run_dir / MODEL_FILE
    uri = resolve_uri(cfg.tracking_uri, run_dir.parent)
    tags = {
        "pul.stage": name,
        "pul.data_lineage": manifest.lineage,
        "pul.code_version": code_version(),
        **(tags or {}),
    }
    # the run ends FINISHED, FAILED or KILLED with this block, whatever stops it
    with tracked_run(uri, cfg.experiment, run_dir, f"{name}-{run_dir.name}", tags) as opened:
        client, run_id = opened
        log_params(client, run_id, to_dict(cfg))
        # and what the stage made of its config on its data (stage 3: noise auto's std)
        log_params(client, run_id, getattr(stage, "resolved", {}))
        client.log_artifact(run_id, str(run_dir / CONFIG_FILE))
        target = {"tracking_uri": uri, "run_id": run_id}
        checkpoint = fit(stage, cfg.train, run_dir, target, label=name)
        tags = mark_damaged_run(client, run_id, tags)  # a damaged copy is not the set
        model_file = run_dir / MODEL_FILE
        shutil.copyfile(checkpoint / MODEL_FILE, model_file)
        client.log_artifact(run_id, str(model_file))
        client.log_artifact(run_id, str(stage.picture(model_file, run_dir)))
        if cfg.register:
            _register(model_file, uri, run_id, run_dir, {**tags, "pul.train_run": run_id})
    (run_dir / DONE_FILE).write_text(run_id)
    log.info("model: %s (MLflow run %s at %s)", model_file, run_id, uri)
    return model_file


def _register(model_file: Path, uri: str, run_id: str, run_dir: Path, tags: dict[str, str]) -> None:
    from jobs.tracking.registry import register_tracker  # MLflow's model code is slow to import

    keep = {k: v for k, v in tags.items() if k.startswith("pul.")}
    name, version = register_tracker(
        model_file,
        tracking_uri=uri,
        run_id=run_id,
        metrics={},
        tags=keep,
        config_file=run_dir / CONFIG_FILE,
    )
    log.info("registered %s version %s (alias candidate)", name, version)
