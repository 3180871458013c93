"""The training loop every worker runs, for every stage: one straight story, top to bottom.

A stage (supervised, BD, TC) supplies the model, the batches and the loss; this loop owns
everything else: DDP, the SGD schedule, checkpoints through `ray.train.report`, resuming
from the newest complete one, and stopping every rank together on a non-finite loss.

Resuming does not trust Ray Train's own record alone. Ray registers a checkpoint in its
snapshot (`checkpoint_manager_snapshot.json`, what `ray.train.get_checkpoint()` returns
after a restart) only after every rank has reported it, a while after it was saved, so a
run stopped in between would resume from the one before and repeat its steps. So rank 0
saves each checkpoint itself (Ray's `checkpoint_upload_fn`) and marks the folder complete
(`complete.json`: the step and every file's size) the moment its files are in place, and a
(re)started worker group resumes from the newest complete checkpoint on disk: marked ones
and the ones Ray's snapshot lists, newest first, the first that loads.
"""

from __future__ import annotations

import json
import os
import shutil
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
from jobs.train.damage import SkipTally
from jobs.train.metrics_log import MetricLogger
from jobs.train.progress import Progress

STATE_FILE = "state.pt"
WORKERS_FILE = "workers.json"
"""Written by rank 0 into the run folder: the host, node and pid of every rank."""
STOP_FILE = "stopped.json"
"""Written by rank 0 into the run folder when training stops early (non-finite loss)."""
COMPLETE_FILE = "complete.json"
"""Written by rank 0 into a checkpoint folder as soon as all its files are in (before Ray
Train registers the checkpoint): the step and every file's size."""
PROGRESS_FILE = "progress.json"
"""Rank 0's last finished step, in the run folder, rewritten at every metric flush: what the
driver reports when the run is stopped."""
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"
"""Ray Train's record of the checkpoints it registered, in the checkpoint folder."""


def checkpoint_root(run_dir: str | Path) -> Path:
    """Where Ray Train keeps a run's checkpoints: RunConfig(storage_path=RUN_DIR/ray,
    name="train")."""
    return Path(run_dir) / "ray" / "train"


def complete_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under `root`, oldest first.

    Complete: marked by rank 0 once its files were in (and every file the mark lists still
    there at its size: Ray may have been deleting an old one), or registered in Ray's
    snapshot (checkpoints of runs from before the marks)."""
    root = Path(root)
    found: dict[Path, int] = {}
    for folder in root.glob("checkpoint_*"):
        try:
            info = json.loads((folder / COMPLETE_FILE).read_text())
            files = info["files"]
            if all((folder / name).stat().st_size == size for name, size in files.items()):
                found[folder] = int(info["step"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    for folder, step in _ray_registered(root):
        if (folder / STATE_FILE).is_file():
            found.setdefault(folder, step)
    return sorted((step, folder) for folder, step in found.items())


def _ray_registered(root: Path) -> list[tuple[Path, int]]:
    try:
        snapshot = json.loads((root / RAY_SNAPSHOT).read_text())
        return [
            (root / entry["checkpoint_dir_name"], int(entry["metrics"]["step"]))
            for entry in snapshot.get("checkpoint_results", [])
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []  # none yet, or half written: the marked checkpoints still count


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
    start = _restore(plain, optimizer, checkpoint_root(config["run_dir"]), rank)
    device = ray.train.torch.get_device()
    # The stage seeds its stream from the start step: a resumed run draws fresh data rather
    # than replaying what it already saw. Stages that mine hard negatives embed with `model`.
    batches = stage.batches(start, model)
    logger = MetricLogger(config.get("mlflow"), enabled=rank == 0)
    skipped = SkipTally(device)  # damaged samples the stage's streams skipped, all ranks
    _record_workers(config["run_dir"], rank, str(device), logger)
    if start:
        # steps an earlier attempt logged after this checkpoint keep their first values:
        # no step of the run's metric history is logged twice
        logger.resume(start)

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
        last = step + 1 == cfg.steps
        logger.add(step, skipped.add(batch, report=(step + 1) % cfg.log_every == 0 or last))
        if (step + 1) % cfg.log_every == 0:
            now = time.perf_counter()
            logger.add(step, {"steps_per_s": cfg.log_every / (now - tick)})
            tick = now
            logger.flush()
            _write_progress(config["run_dir"], step + 1, rank)
            progress.show(step + 1, loss.item())
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            logger.flush()
            _write_progress(config["run_dir"], step + 1, rank)
            _checkpoint(stage, plain, optimizer, step + 1, rank, loss.item(), config["run_dir"])


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


def _restore(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, root: Path, rank: int
) -> int:
    """Load the newest complete checkpoint that loads; its step (0: none, a fresh start).

    Rank 0 chooses and the others load its choice, so every rank starts from the same
    weights and step even if one of them saw the folder a moment earlier."""
    chosen: list[str | None] = [None]
    state = None
    if rank == 0:
        for _, folder in reversed(complete_checkpoints(root)):
            try:
                state = _load_state(folder)
            except Exception as err:  # any unreadable file: try the older checkpoint
                print(f"skipping checkpoint {folder}: {type(err).__name__}: {err}", flush=True)
                continue
            chosen = [str(folder)]
            break
    if dist.is_available() and dist.is_initialized():
        dist.broadcast_object_list(chosen, src=0)
    if chosen[0] is None:
        return 0
    if state is None:
        state = _load_state(Path(chosen[0]))
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def _load_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)


def _write_progress(run_dir: str, step: int, rank: int) -> None:
    if rank == 0:
        path = Path(run_dir) / PROGRESS_FILE
        tmp = path.with_name(f".{PROGRESS_FILE}.tmp")
        tmp.write_text(json.dumps({"step": step}))
        tmp.replace(path)


def _checkpoint(
    stage: Stage,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    rank: int,
    loss: float,
    run_dir: str,
) -> None:
    metrics = {"step": step, "loss": loss}
    name = f"checkpoint_{step:07d}"  # named by step; the same name on every rank
    with tempfile.TemporaryDirectory() as folder:
        if rank == 0:  # DDP keeps replicas identical: one copy is the checkpoint
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
            torch.save(state, os.path.join(folder, STATE_FILE))
            stage.export(model, folder)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
            _report(metrics, checkpoint, name, _SaveAndMark(checkpoint_root(run_dir), step))
        else:
            _report(metrics, None, name)


class _SaveAndMark:
    """Ray's checkpoint upload, done here: copy the files into the run's checkpoint folder,
    then mark the copy complete at once (the moment in between is the only one in which a
    stopped run leaves a whole checkpoint it does not count). Ray registers the checkpoint
    after this returns, and later deletes the ones beyond num_to_keep, marker and all."""

    def __init__(self, root: Path, step: int) -> None:
        self.root, self.step = root, step

    def __call__(self, checkpoint: ray.train.Checkpoint, name: str) -> ray.train.Checkpoint:
        saved = self.root / name
        # a folder of this name left by a stopped attempt is no longer complete
        (saved / COMPLETE_FILE).unlink(missing_ok=True)
        shutil.copytree(checkpoint.path, saved, dirs_exist_ok=True)
        files = {entry.name: entry.stat().st_size for entry in os.scandir(checkpoint.path)}
        tmp = saved / f".{COMPLETE_FILE}.tmp"
        tmp.write_text(json.dumps({"step": self.step, "files": files}))
        tmp.replace(saved / COMPLETE_FILE)
        return ray.train.Checkpoint.from_directory(str(saved))


def _report(
    metrics: dict[str, Any],
    checkpoint: ray.train.Checkpoint | None = None,
    name: str | None = None,
    upload: _SaveAndMark | None = None,
) -> None:
    ray.train.report(
        metrics, checkpoint=checkpoint, checkpoint_dir_name=name, checkpoint_upload_fn=upload
    )
