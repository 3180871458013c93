"""How a training stage runs: steps, optimiser, schedule, workers, checkpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal


@dataclass
class Tracked:
    """Where a job's MLflow run goes: the fields every training stage's config starts with."""

    experiment: str = "pul"
    """MLflow experiment of the run."""
    tracking_uri: str = ""
    """MLflow tracking URI; empty: $MLFLOW_TRACKING_URI, else SQLite under the work folder."""
    register: bool = False
    """Register the final model in the MLflow model registry (pul-alexnet / pul-resnet22,
    alias candidate)."""


@dataclass
class TrainConfig:
    steps: int = 2000
    """Optimiser steps (each worker takes the same number)."""
    batch_size: int = 8
    """Pairs per step per worker (the global batch is workers x batch_size)."""
    lr: float = 1e-2
    """Learning rate at step 0 (SiamFC: 1e-2)."""
    lr_end: float = 1e-5
    """Learning rate at the last step; the schedule decays geometrically in between (SiamFC)."""
    warmup_steps: int = 0
    """Linear warm-up steps before the geometric decay."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """SGD weight decay."""
    workers: int = 2
    """Ray Train workers (DDP ranks): CPU processes here, one per GPU on a cluster. With
    launcher=local the launcher decides (torchrun --nproc_per_node; one process alone)."""
    launcher: Literal["ray", "local"] = "ray"
    """ray: Ray Train workers (local Ray here, the allocation's Ray on Slurm). local: this
    process runs the loop itself, alone or as one rank of torchrun (RANK, WORLD_SIZE from
    the environment); no Ray needed."""
    cpus_per_worker: float = 1.0
    """CPUs Ray reserves per worker; fractions let several workers share a CPU."""
    use_gpu: bool = False
    """One GPU per worker, NCCL instead of gloo."""
    loader_workers: int = -1
    """DataLoader processes per rank that read and decode the shards (0: in the training
    process; -1: from the node's CPUs, one less than its share per rank, at most 8)."""
    prefetch: int = 4
    """Loads each DataLoader process keeps ready ahead of the trainer."""
    augment_on: Literal["auto", "device", "opencv"] = "auto"
    """How stages 1 and 3 cut and augment each batch: device (batched torch on the trainer's
    device), opencv (OpenCV on the host, pair by pair), or auto: device on CUDA, opencv on
    CPUs (where OpenCV is 10-20x faster than batched torch)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast of the forward pass: auto is bf16 on CUDA devices that support it, fp32
    elsewhere."""
    channels_last: Literal["auto", "always", "never"] = "auto"
    """NHWC memory layout of the network: auto is on CUDA only."""
    compile: bool = False
    """torch.compile the network (pays on long GPU runs, after a compile of minutes)."""
    checkpoint_every: int = 200
    """Steps between checkpoints (and the last step always)."""
    log_every: int = 20
    """Steps between metric logs to MLflow (rank 0)."""
    validate_every: int = 0
    """Steps between validations (and the last step), where the job gives the loop a
    validator (`pul tune`: the AUC on a small held-out benchmark); 0: never."""
    max_failures: int = 3
    """Worker failures Ray Train recovers from (restarting from the last checkpoint)."""
    seed: int = 0
    """Seeds the model init and each rank's data stream."""
    max_damaged: float = 0.01
    """Share of the samples a rank reads that may be damaged (unreadable tar, bad metadata, a
    frame or crop failing its CRC-32): they are skipped and counted (metric data_skipped);
    more distinct damaged samples than this share (and than max_damaged_floor) stop the job
    with one line naming the damaged shards."""
    max_damaged_floor: int = 5
    """Damaged samples always tolerated, whatever their share: one bad clip in a tiny set
    does not stop a run."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "workers", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.lr_end <= self.lr:
            raise ValueError(f"need 0 < lr_end <= lr, got lr={self.lr}, lr_end={self.lr_end}")
        if self.cpus_per_worker <= 0:
            raise ValueError(f"cpus_per_worker must be positive, got {self.cpus_per_worker}")
        if self.loader_workers < -1 or self.max_failures < -1 or self.warmup_steps < 0:
            raise ValueError(
                "need loader_workers >= -1 (-1: auto), warmup_steps >= 0, max_failures >= -1"
            )
        if self.validate_every < 0:
            raise ValueError(f"validate_every must be 0 (never) or more, got {self.validate_every}")
        if self.prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {self.prefetch}")
        if not 0 <= self.max_damaged <= 1 or self.max_damaged_floor < 0:
            raise ValueError(
                f"need 0 <= max_damaged <= 1 and max_damaged_floor >= 0, got "
                f"{self.max_damaged}, {self.max_damaged_floor}"
            )


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then geometric decay from lr to lr_end over the remaining steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.lr * (cfg.lr_end / cfg.lr) ** progress


def validation_due(cfg: TrainConfig, done: int) -> bool:
    """Whether the loop validates after `done` steps: every validate_every, and the last."""
    return cfg.validate_every > 0 and (done % cfg.validate_every == 0 or done == cfg.steps)


def loader_workers(cfg: TrainConfig, ranks_on_node: int) -> int:
    """DataLoader processes per rank: the setting, or (-1) the node's CPUs shared by its
    ranks, less the rank's own training thread, at most 8 (decoding scales no further
    than the trainer consumes)."""
    if cfg.loader_workers >= 0:
        return cfg.loader_workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(8, (cpus or 1) // max(1, ranks_on_node) - 1))
