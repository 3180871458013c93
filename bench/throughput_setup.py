"""The pieces both training-throughput paths share: the stages as a run configures them, the
model on the device, the loop body of jobs/train/loop.py, and a clock that waits for the
device before it is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.bench_data import MAX_GAP
from jobs.config import from_dict
from jobs.train.bd import BDConfig, BDStage
from jobs.train.compute import Compute
from jobs.train.config import TrainConfig, lr_at
from jobs.train.damage import SkipTally
from jobs.train.loop import LossHealth
from jobs.train.tc import TCConfig, TCStage

STEPS = 1_000_000
"""train.steps of the benchmark's configs: the schedule (lr, gap curriculum) stays at its
start over the few hundred steps measured."""
PLAIN = TrainConfig(precision="fp32", channels_last="never")
"""How the reference computes: fp32, NCHW (what Compute resolves to on a CPU)."""


def tc_stage(data: Path, batch: int, pool: int, width: float, augment_on: str = "auto") -> TCStage:
    """Stage 3 as `pul train tc` builds it, all pairs of the set within the gap limit
    (gap_start = gap_end = the set's largest gap: no pair is read and then dropped)."""
    cfg = from_dict(
        TCConfig,
        {
            "data": str(data),
            "model": {"width": width},
            "pool": pool,
            "gap_start": MAX_GAP,
            "gap_end": MAX_GAP,
            "train": {"batch_size": batch, "steps": STEPS, "augment_on": augment_on},
        },
    )
    return TCStage(cfg)


def bd_stage(data: Path, batch: int, pool: int, width: float, augment_on: str = "auto") -> BDStage:
    """Stage 1 as `pul train bd` builds it."""
    cfg = from_dict(
        BDConfig,
        {
            "data": str(data),
            "model": {"width": width},
            "pool": pool,
            "train": {"batch_size": batch, "steps": STEPS, "augment_on": augment_on},
        },
    )
    return BDStage(cfg)


def augment_on_device(cfg: TrainConfig, device: torch.device) -> bool:
    """Where the crops and views are made, decided as run_loop decides it (auto: batched on
    a CUDA device, OpenCV on the host on a CPU)."""
    return cfg.augment_on == "device" or (cfg.augment_on == "auto" and device.type == "cuda")


@dataclass
class LoopBody:
    """One training step of jobs/train/loop.py's run_loop, without the logging: the lr of
    the schedule, the batch on the device, the forward under the stage's precision, the
    loop's on-device bookkeeping (finite-loss watch, damaged-sample tally), backward, SGD."""

    stage: Any
    model: torch.nn.Module
    compute: Compute
    cfg: TrainConfig

    def __post_init__(self) -> None:
        self.device = self.compute.device
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=self.cfg.lr,
            momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay,
        )
        self.health = LossHealth(self.device)
        self.skipped = SkipTally(self.device)

    def __call__(self, batch: dict[str, torch.Tensor], step: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.cfg, step)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with self.compute.autocast():
            loss, _ = self.stage.loss(self.model, batch)
        self.health.watch(loss, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.skipped.add(batch, report=False)


def prepared(stage: Any, compute: Compute) -> torch.nn.Module:
    """The stage's model as run_loop prepares it (layout, compile), on the device, training."""
    torch.manual_seed(0)
    model = compute.prepare(stage.build_model()).to(compute.device)
    return model.train()


def settings(compute: Compute) -> str:
    """'precision=bf16, channels_last=true, compiled=false': what the steps ran with."""
    return ", ".join(f"{k.removeprefix('pul.')}={v}" for k, v in compute.describe().items())


def sync(device: torch.device) -> None:
    """Wait for the device's queued work: a clock read before it would time the queueing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    steps: int
    seconds: float

    def rate(self, per_step: int) -> float:
        return per_step * self.steps / self.seconds


def timed(step: Callable[[int], None], warmup: int, seconds: float, device: torch.device) -> Timing:
    """`warmup` untimed steps, then steps until `seconds` have passed (at least 2)."""
    for i in range(warmup):
        step(i)
    sync(device)
    start = time.perf_counter()
    done = 0
    while done < 2 or time.perf_counter() - start < seconds:
        step(warmup + done)
        done += 1
    sync(device)  # the steps the host queued are all done before the clock is read
    return Timing(done, time.perf_counter() - start)
