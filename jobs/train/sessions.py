"""Who runs the training loop: Ray Train's workers, or plain processes (one, or torchrun's).

The loop asks a session five things: its rank and world size, its device, to wrap the model
for DDP, to save a checkpoint, and to report metrics without one (validation values, to Ray
Train's controller; alone, to nobody). Everything else (the stage, the data, the schedule, the
metrics) is the same code under both, which is what lets a bare GPU image with only torch,
numpy and OpenCV run a real stage end to end: `LocalSession` imports no Ray and no MLflow.

`LocalSession` finds its place the way DINO's `init_distributed_mode` does under any
launcher: RANK / WORLD_SIZE / LOCAL_RANK from the environment (torchrun, or srun with
MASTER_ADDR set), or a single process when they are absent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn

from jobs.train.checkpoints import (
    checkpoint_name,
    checkpoint_root,
    complete_checkpoints,
    copy_and_mark,
)

DDP_SETTINGS: dict[str, Any] = {
    # The gradients are the bucket views: one copy of every gradient less per step.
    "gradient_as_bucket_view": True,
    # 25 MB is DDP's default: all of AlexNet's gradients (9 MB at full width) and most of
    # CIResNet-22's fall into one or two buckets, reduced as soon as backward fills them.
    "bucket_cap_mb": 25,
}
KEEP_CHECKPOINTS = 2
"""Complete checkpoints kept per run (the older ones are deleted)."""

WriteFiles = Callable[[str], None]
"""Writes a checkpoint's files (state.pt, model.pt) into the folder it is given."""


class TrainSession(Protocol):
    rank: int
    world: int
    local_world: int
    """Ranks on this node (they share its CPUs)."""
    device: torch.device

    def wrap(self, model: nn.Module) -> nn.Module: ...

    def save_checkpoint(self, write: WriteFiles, step: int, metrics: dict[str, Any]) -> None: ...

    def report(self, metrics: dict[str, Any]) -> None: ...


class RaySession:
    """A Ray Train worker (TorchTrainer): Ray made the process group and picks the device."""

    def __init__(self, run_dir: str) -> None:
        import ray.train
        import ray.train.torch

        self.run_dir = run_dir
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.local_world = ctx.get_local_world_size()
        self.device = ray.train.torch.get_device()

    def wrap(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(model, parallel_strategy_kwargs=DDP_SETTINGS)

    def save_checkpoint(self, write: WriteFiles, step: int, metrics: dict[str, Any]) -> None:
        import ray.train

        name = checkpoint_name(step)
        with tempfile.TemporaryDirectory() as folder:
            if self.rank != 0:  # DDP keeps replicas identical: rank 0's copy is the checkpoint
                ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
                return
            write(folder)
            root = checkpoint_root(self.run_dir)

            def save_and_mark(checkpoint: Any, dir_name: str) -> Any:
                # Ray's upload, done here: the copy is marked complete the moment its files
                # are in; Ray registers it after this returns and later deletes the ones
                # beyond num_to_keep, marker and all.
                copy_and_mark(checkpoint.path, root / dir_name, step)
                return ray.train.Checkpoint.from_directory(str(root / dir_name))

            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(folder),
                checkpoint_dir_name=name,
                checkpoint_upload_fn=save_and_mark,
            )

    def report(self, metrics: dict[str, Any]) -> None:
        """Metrics without a checkpoint (validation). Every rank calls it at the same steps:
        Ray Train V2 pairs the i-th report of each rank."""
        import ray.train

        ray.train.report(metrics, checkpoint=None)


class LocalSession:
    """A process started by hand or by torchrun: rank and world from the environment."""

    def __init__(self, run_dir: str, use_gpu: bool) -> None:
        self.run_dir = run_dir
        self.rank, self.world, self.local_rank = distributed_place()
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        if use_gpu and not torch.cuda.is_available():
            raise RuntimeError("train.use_gpu=true but torch sees no CUDA device")
        if use_gpu:
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            self.device = torch.device("cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if use_gpu else "gloo", init_method="env://")

    def wrap(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.world == 1:
            return model
        ids = [self.local_rank] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, **DDP_SETTINGS)

    def save_checkpoint(self, write: WriteFiles, step: int, metrics: dict[str, Any]) -> None:
        if self.rank == 0:
            root = checkpoint_root(self.run_dir)
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=root) as folder:
                write(folder)
                copy_and_mark(folder, root / checkpoint_name(step), step)
            for _, old in complete_checkpoints(root)[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old, ignore_errors=True)
        if self.world > 1:
            dist.barrier()  # no rank runs ahead of a checkpoint rank 0 may still be writing

    def report(self, metrics: dict[str, Any]) -> None:
        """Nothing to tell: rank 0's metric log already holds the values."""

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def distributed_place() -> tuple[int, int, int]:
    """(rank, world size, local rank) from a launcher's environment; (0, 1, 0) alone."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        return rank, world, int(os.environ.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in os.environ and "MASTER_ADDR" in os.environ:  # srun, one task a GPU
        rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
        os.environ.setdefault("MASTER_PORT", "29500")
        return rank, world, int(os.environ.get("SLURM_LOCALID", 0))
    return 0, 1, 0
