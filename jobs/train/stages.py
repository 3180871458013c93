"""The training stages, and what a run of one accepts: its data and its run folder.

Light on purpose: the Ray-free entry (standalone.py) imports this, never Ray or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.config import dump_yaml, save_config
from jobs.errors import JobError
from jobs.train.bd import BDConfig, BDStage
from jobs.train.supervised import SupervisedConfig, SupervisedStage
from jobs.train.tc import TCConfig, TCStage
from shards.manifest import read_manifest, shard_paths
from shards.reader import clip_stream

CONFIG_FILE = "config.yaml"
DONE_FILE = "DONE"

STAGES: dict[str, tuple[type, type]] = {
    "supervised": (SupervisedConfig, SupervisedStage),
    "bd": (BDConfig, BDStage),
    "tc": (TCConfig, TCStage),
}
"""Stage name -> (its config class, its Stage class)."""
DATA_KINDS = {"supervised": "clips", "bd": "clips", "tc": "pairs"}
"""Stage name -> the manifest kind of the shard set it trains on."""
KIND_MAKERS = {"clips": "pul shards pack", "pairs": "pul mine"}


def check_data(name: str, data: str) -> None:
    """Refuse, before anything starts, a shard set of the wrong kind for stage `name` (a
    stage fed the other kind would fail on every worker, retry and end in a traceback), and
    unlabeled clips for the supervised baseline (it would never find a pair to train on)."""
    manifest = read_manifest(data)
    wanted = DATA_KINDS[name]
    if manifest.kind != wanted:
        raise JobError(
            f"pul train {name} needs {wanted} shards ({KIND_MAKERS[wanted]}), but {data} "
            f"holds {manifest.kind}"
        )
    if name == "supervised" and manifest.shards and not _labeled(shard_paths(data)[0]):
        raise JobError(
            f"pul train supervised needs labeled clips (ground-truth boxes), but the first "
            f"shard of {data} has none (packed from unlabeled video?); pul train bd learns "
            "from unlabeled clips"
        )


def _labeled(shard: Path) -> bool:
    """Whether any clip of this shard carries a ground-truth box (reads no frame)."""
    return any(
        any(box is not None for box in clip.meta.get("gt") or []) for clip in clip_stream([shard])
    )


def claim_run_dir(run_dir: Path, cfg: Any) -> None:
    """A run folder belongs to one config: rerunning it resumes, another config is refused."""
    saved = run_dir / CONFIG_FILE
    if saved.exists() and saved.read_text() != dump_yaml(cfg):
        raise JobError(
            f"{run_dir} holds a run with a different config; choose another --run-dir "
            f"(or compare with {saved})"
        )
    save_config(cfg, saved)
