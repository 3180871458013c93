"""Checkpoints of a training run: where they live, which are complete, how one is saved.

Resuming does not trust Ray Train's own record alone. Ray registers a checkpoint in its
snapshot (`checkpoint_manager_snapshot.json`, what `ray.train.get_checkpoint()` returns
after a restart) only after every rank has reported it, a while after it was saved, so a
run stopped in between would resume from the one before and repeat its steps. So rank 0
saves each checkpoint itself and marks the folder complete (`complete.json`: the step and
every file's size) the moment its files are in place, and a (re)started run resumes from
the newest complete checkpoint on disk: marked ones and the ones Ray's snapshot lists,
newest first, the first that loads. Runs without Ray (launcher=local) use the same folders
and marks, so a run can even change launcher and resume.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

STATE_FILE = "state.pt"
COMPLETE_FILE = "complete.json"
"""Written by rank 0 into a checkpoint folder as soon as all its files are in (before Ray
Train registers the checkpoint): the step and every file's size."""
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"
"""Ray Train's record of the checkpoints it registered, in the checkpoint folder."""


def checkpoint_root(run_dir: str | Path) -> Path:
    """Where a run's checkpoints live: RunConfig(storage_path=RUN_DIR/ray, name="train")."""
    return Path(run_dir) / "ray" / "train"


def checkpoint_name(step: int) -> str:
    """A checkpoint folder's name: by step, the same on every rank."""
    return f"checkpoint_{step:07d}"


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


def copy_and_mark(source: str | Path, saved: Path, step: int) -> None:
    """Copy a checkpoint's files into `saved`, then mark the copy complete at once (the
    moment in between is the only one in which a stopped run leaves a whole checkpoint it
    does not count)."""
    # a folder of this name left by a stopped attempt is no longer complete
    (saved / COMPLETE_FILE).unlink(missing_ok=True)
    shutil.copytree(source, saved, dirs_exist_ok=True)
    files = {entry.name: entry.stat().st_size for entry in os.scandir(source)}
    tmp = saved / f".{COMPLETE_FILE}.tmp"
    tmp.write_text(json.dumps({"step": step, "files": files}))
    tmp.replace(saved / COMPLETE_FILE)


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, root: Path, rank: int) -> int:
    """Load the newest complete checkpoint that loads; its step (0: none, a fresh start).

    Rank 0 chooses and the others load its choice, so every rank starts from the same
    weights and step even if one of them saw the folder a moment earlier."""
    chosen: list[str | None] = [None]
    state = None
    if rank == 0:
        for _, folder in reversed(complete_checkpoints(root)):
            try:
                state = load_state(folder)
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
        state = load_state(Path(chosen[0]))
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def load_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)


def write_state(
    folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int
) -> None:
    """The resumable state (weights, optimiser, step) as `folder/state.pt`."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    torch.save(state, os.path.join(folder, STATE_FILE))
