"""The training loop every worker runs, for every stage: one straight story, top to bottom.

A stage (supervised, BD, TC) supplies the model, the batches and the loss; this loop owns
everything else: DDP, the SGD schedule, checkpoints through `ray.train.report`, resuming
from the latest one, and stopping every rank together on a non-finite loss.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from jobs.train.config import TrainConfig, lr_at
from jobs.train.metrics_log import MetricLogger
from jobs.train.progress import Progress

STATE_FILE = "state.pt"
WORKERS_FILE = "workers.json"
"""Written by rank 0 into the run folder: the host, node and pid of every rank."""
STOP_FILE = "stopped.json"
"""Written by rank 0 into the run folder when training stops early (non-finite loss)."""


class Stage(Protocol):
    """What a training stage provides to the loop. Instances are pickled to the workers."""

    def build_model(self) -> torch.nn.Module: ...

    def batches(
        self, start_step: int, model: torch.nn.Module
    ) -> Iterator[dict[str, torch.Tensor]]: ...

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def export(self, model: torch.nn.Module, folder: str) -> None: ...

    def picture(self, model_file: Path, run_dir: Path) -> Path: ...


def train_loop(config: dict[str, Any]) -> None:
    stage: Stage = config["stage"]
    cfg: TrainConfig = config["train"]
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    torch.manual_seed(cfg.seed)

    model = ray.train.torch.prepare_model(stage.build_model())
    plain = model.module if hasattr(model, "module") else model
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    start = _restore(plain, optimizer)
    device = ray.train.torch.get_device()
    # The stage seeds its stream from the start step: a resumed run draws fresh data rather
    # than replaying what it already saw. Stages that mine hard negatives embed with `model`.
    batches = stage.batches(start, model)
    logger = MetricLogger(config.get("mlflow"), enabled=rank == 0)
    _record_workers(config["run_dir"], rank, str(device), logger)
    if start:
        logger.add(start, {"resumed_at_step": start})

    model.train()
    progress = Progress(config.get("label", "train"), cfg.steps, start, enabled=rank == 0)
    tick = time.perf_counter()
    for step in range(start, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step)
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        loss, metrics = stage.loss(model, batch)
        if not _finite_everywhere(loss):
            # Every rank stops here together; rank 0 leaves the reason in the run folder
            # (shared storage) for the driver, which turns it into the job's error.
            if rank == 0:
                _write_stop(config["run_dir"], step, float(loss.item()))
            return
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        logger.add(step, {"loss": loss.item(), "lr": lr_at(cfg, step), **metrics})
        if (step + 1) % cfg.log_every == 0:
            now = time.perf_counter()
            logger.add(step, {"steps_per_s": cfg.log_every / (now - tick)})
            tick = now
            logger.flush()
            progress.show(step + 1, loss.item())
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            logger.flush()
            _checkpoint(stage, plain, optimizer, step + 1, rank, loss.item())


def _record_workers(run_dir: str, rank: int, device: str, logger: MetricLogger) -> None:
    """Where every rank runs (host, Slurm node, pid), in RUN_DIR/workers.json and as an
    MLflow tag: on a cluster, the proof that training really spread over the nodes."""
    me = {
        "rank": rank,
        "host": socket.gethostname(),
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "pid": os.getpid(),
        "device": device,
    }
    everyone = [me]
    if dist.is_available() and dist.is_initialized():
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, me)
    if rank == 0:
        with open(os.path.join(run_dir, WORKERS_FILE), "w") as handle:
            json.dump(everyone, handle, indent=1)
        logger.tag("pul.train_nodes", ",".join(sorted({w["node"] for w in everyone})))


def _write_stop(run_dir: str, step: int, loss: float) -> None:
    with open(os.path.join(run_dir, STOP_FILE), "w") as handle:
        json.dump({"reason": "nonfinite", "step": step, "loss": str(loss)}, handle)


def _finite_everywhere(loss: torch.Tensor) -> bool:
    """All ranks must agree to stop, or the others would hang in the next all-reduce."""
    flag = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


def _restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as folder:
        state = torch.load(os.path.join(folder, STATE_FILE), map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def _checkpoint(
    stage: Stage,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    rank: int,
    loss: float,
) -> None:
    metrics = {"step": step, "loss": loss}
    with tempfile.TemporaryDirectory() as folder:
        if rank == 0:  # DDP keeps replicas identical: one copy is the checkpoint
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
            torch.save(state, os.path.join(folder, STATE_FILE))
            stage.export(model, folder)
            _report(metrics, ray.train.Checkpoint.from_directory(folder))
        else:
            _report(metrics)


def _report(metrics: dict[str, Any], checkpoint: ray.train.Checkpoint | None = None) -> None:
    ray.train.report(metrics, checkpoint=checkpoint)
