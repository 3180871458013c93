"""The training loop every rank runs, for every stage: one straight story, top to bottom.

A stage (supervised, BD, TC) supplies the model, the batches and the loss; a session (Ray
Train's worker, or a plain process alone or under torchrun: sessions.py) supplies the rank,
the device, DDP and checkpoint saving; this loop owns everything else: the SGD schedule,
precision, resuming from the newest complete checkpoint (checkpoints.py), metrics, and
stopping every rank together on a non-finite loss.

Validation (optional): a picklable `validate(model, step) -> {name: value}` in the config
(or carried by the stage) runs on rank 0 every `validate_every` steps and at the last, in
eval mode without gradients; its values are logged with the other metrics and reported
through the session on every rank (Ray Train V2 pairs the ranks' reports one by one).

Host syncs: a step queues its work on the device and moves on. The loss and the stage's
metrics stay on the device until a reporting step (every `log_every` steps, checkpoints,
the last step), where the finite-loss check (one all-reduce) and the metric read (one
transfer) happen for all the steps in between.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from jobs.train.checkpoints import checkpoint_root, complete_checkpoints, restore, write_state
from jobs.train.compute import Compute
from jobs.train.config import TrainConfig, loader_workers, lr_at, validation_due
from jobs.train.damage import SkipTally
from jobs.train.metrics_log import MetricLogger
from jobs.train.progress import Progress
from jobs.train.sessions import LocalSession, TrainSession

__all__ = ["checkpoint_root", "complete_checkpoints", "Loader", "Stage", "run_loop", "train_loop"]

Validate = Callable[[torch.nn.Module, int], dict[str, float]]
"""A validator: (the model being trained, steps done) -> metric name -> value."""
WORKERS_FILE = "workers.json"
"""Written by rank 0 into the run folder: the host, node and pid of every rank."""
STOP_FILE = "stopped.json"
"""Written by rank 0 into the run folder when training stops early (non-finite loss)."""
PROGRESS_FILE = "progress.json"
"""Rank 0's last finished step, in the run folder, rewritten at every metric flush: what the
driver reports when the run is stopped."""


@dataclass(frozen=True)
class Loader:
    """How a stage feeds its batches: DataLoader processes, pinned memory, the device."""

    workers: int
    """DataLoader processes of this rank (0: the stream runs in the training process)."""
    prefetch: int
    """Loads each process keeps ready."""
    device: torch.device
    """Where the trainer computes: the stage puts its batches there."""
    augment_on_device: bool = False
    """Crops and augmentation batched on `device` (else OpenCV on the host)."""

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"


class Stage(Protocol):
    """What a training stage provides to the loop. Instances are pickled to the workers.

    A stage may also carry `validate(model, step) -> dict[str, float]`: the way a job hands
    the loop a validator through a launcher that builds the loop's config itself; and
    `resolved`, a dict of what it derived from its data (stage 3's estimated noise), which
    the job logs as the run's params beside the config's."""

    def build_model(self) -> torch.nn.Module: ...

    def batches(
        self, start_step: int, model: torch.nn.Module, loader: Loader
    ) -> Iterator[dict[str, torch.Tensor]]: ...

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def export(self, model: torch.nn.Module, folder: str) -> None: ...

    def picture(self, model_file: Path, run_dir: Path) -> Path: ...


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train's entry (TorchTrainer's train_loop_per_worker)."""
    from jobs.train.sessions import RaySession

    run_loop(config, RaySession(config["run_dir"]))


def local_loop(config: dict[str, Any]) -> None:
    """The entry of a process that is its own launcher (alone, or one rank of torchrun)."""
    session = LocalSession(config["run_dir"], config["train"].use_gpu)
    try:
        run_loop(config, session)
    finally:
        session.close()


def run_loop(config: dict[str, Any], session: TrainSession) -> None:
    stage: Stage = config["stage"]
    cfg: TrainConfig = config["train"]
    run_dir = config["run_dir"]
    rank, device = session.rank, session.device
    validate: Validate | None = config.get("validate") or getattr(stage, "validate", None)
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    torch.manual_seed(cfg.seed)

    compute = Compute.resolve(cfg, device)
    model = session.wrap(compute.prepare(stage.build_model()))
    plain = model.module if hasattr(model, "module") else model
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    start = restore(plain, optimizer, checkpoint_root(run_dir), rank)
    # The stage seeds its stream from the start step: a resumed run draws fresh data rather
    # than replaying what it already saw. Stages that mine hard negatives embed with `model`.
    on_device = cfg.augment_on == "device" or (cfg.augment_on == "auto" and device.type == "cuda")
    # (OpenCV beats batched torch on CPUs: bench/augment_speed.py)
    loader = Loader(loader_workers(cfg, session.local_world), cfg.prefetch, device, on_device)
    batches = stage.batches(start, model, loader)
    logger = MetricLogger(config.get("mlflow"), enabled=rank == 0, run_dir=run_dir)
    skipped = SkipTally(device)  # damaged samples the stage's streams skipped, all ranks
    health = LossHealth(device)
    _record_workers(run_dir, rank, str(device), logger)
    where = {
        "pul.loader_workers": str(loader.workers),
        "pul.augment_on": "device" if on_device else "opencv",
    }
    for key, value in {**compute.describe(), **where}.items():
        logger.tag(key, value)
    if start:
        # steps an earlier attempt logged after this checkpoint keep their first values:
        # no step of the run's metric history is logged twice
        logger.resume(start)

    model.train()
    progress = Progress(config.get("label", "train"), cfg.steps, start, enabled=rank == 0)
    tick, last_report = time.perf_counter(), start
    for step in range(start, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step)
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        with compute.autocast():
            loss, metrics = stage.loss(model, batch)
        health.watch(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        logger.add(step, {"loss": loss.detach(), "lr": lr_at(cfg, step), **metrics})
        last = step + 1 == cfg.steps
        log_now = (step + 1) % cfg.log_every == 0 or last
        save_now = (step + 1) % cfg.checkpoint_every == 0 or last
        validate_now = validate is not None and validation_due(cfg, step + 1)
        logger.add(step, skipped.add(batch, report=log_now))
        if not (log_now or save_now or validate_now):
            continue
        bad = health.first_nonfinite()  # the same steps on every rank: collectives line up
        if bad is not None:
            # Every rank stops here together; rank 0 leaves the reason in the run folder
            # (shared storage) for the driver, which turns it into the job's error. The
            # weights of the steps since are not saved.
            if rank == 0:
                _write_stop(run_dir, *bad)
            return
        if log_now:
            now = time.perf_counter()
            logger.add(step, {"steps_per_s": (step + 1 - last_report) / (now - tick)})
            tick, last_report = now, step + 1
        logger.flush()
        _write_progress(run_dir, step + 1, rank)
        if log_now:
            progress.show(step + 1, float(loss.detach()))
        if save_now:

            def write(folder: str, step: int = step + 1) -> None:
                write_state(folder, plain, optimizer, step)
                stage.export(plain, folder)

            reported = {"step": step + 1, "loss": float(loss.detach())}
            session.save_checkpoint(write, step + 1, reported)
        if validate_now:
            # after the checkpoint: a sweep that stops this run on these values keeps it
            values = validated(validate, plain, step + 1) if rank == 0 else {}
            logger.add(step, values)
            logger.flush()
            session.report({"step": step + 1, **values})


def validated(validate: Validate, model: torch.nn.Module, step: int) -> dict[str, float]:
    """`validate(model, step)` in eval mode (batch norms on their running statistics) and
    without gradients; the model goes back to training mode whatever happens."""
    model.eval()
    try:
        with torch.no_grad():
            return {key: float(value) for key, value in validate(model, step).items()}
    finally:
        model.train()


class LossHealth:
    """Watches every step's loss for non-finite values without a host sync per step: the
    first bad step and its loss stay on the device until `first_nonfinite` is asked."""

    def __init__(self, device: torch.device) -> None:
        self.first = torch.full((2,), float("nan"), dtype=torch.float64, device=device)
        """(step, loss) of the first non-finite loss; step NaN while there is none."""

    def watch(self, loss: torch.Tensor, step: int) -> None:
        value = loss.detach().to(torch.float64).reshape(1)
        fresh = ~torch.isfinite(value) & torch.isnan(self.first[:1])
        here = torch.cat([torch.full_like(value, step), value])
        self.first = torch.where(fresh, here, self.first)

    def first_nonfinite(self) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite loss on any rank since the start, or None."""
        first = torch.nan_to_num(self.first[:1], nan=math.inf).to(torch.float32)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(first, op=dist.ReduceOp.MIN)  # the earliest step of any rank
        step = float(first.item())
        if math.isinf(step):
            return None
        mine, loss = self.first.tolist()
        # the rank that saw it first knows its value; the others say only the step
        return int(step), (loss if mine == step else math.nan)


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


def _write_progress(run_dir: str, step: int, rank: int) -> None:
    if rank == 0:
        path = Path(run_dir) / PROGRESS_FILE
        tmp = path.with_name(f".{PROGRESS_FILE}.tmp")
        tmp.write_text(json.dumps({"step": step}))
        tmp.replace(path)
