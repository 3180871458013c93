"""The pack job: source videos -> a verified, resumable clip-shard set.

Videos are staged in parallel as Ray tasks (or in this process with `workers=1`), then
assembled into shards; see shards/pack.py for why the result is byte-identical however
often the job is interrupted and rerun.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import ray
from tqdm import tqdm

from jobs.config import save_config, to_dict
from jobs.runtime import cluster_cpus, connect_ray, run_bounded
from shards.errors import ShardError
from shards.manifest import Manifest
from shards.pack import PackPlan, assemble, plan_for, stage_video
from shards.pack_config import PackConfig
from shards.readers import read_sources

log = logging.getLogger(__name__)


def pack(
    cfg: PackConfig, out: str | Path, command: list[str] | None = None, progress: bool = True
) -> Manifest:
    """Pack `cfg.sources` into clip shards in `out`; a finished identical pack is reused."""
    out = Path(out)
    if not cfg.sources:
        raise ShardError("nothing to pack: give at least one source video or folder")
    refs = read_sources(list(cfg.sources), cfg.format, cfg.split_cuts)
    plan = plan_for(out, refs, cfg)
    done = plan.shard_set.finished()
    if done is not None:
        log.info("%s already holds this shard set; nothing to do", out)
        return done
    with plan.shard_set.writing():
        done = plan.shard_set.finished()  # a writer we waited for may have just finished it
        if done is not None:
            return done
        plan.shard_set.start()
        pending = plan.pending()
        if len(pending) < len(refs):
            log.info(
                "resuming: %d of %d videos already staged", len(refs) - len(pending), len(refs)
            )
        _stage_all(plan, cfg, pending, progress)
        entries, frames = assemble(plan, cfg)
        save_config(cfg, out / "config.yaml")
        manifest = Manifest(
            kind="clips",
            shards=entries,
            command=command if command is not None else sys.argv,
            config=to_dict(cfg),
            extra={"videos": len(refs), "frames": frames, "plan_hash": plan.plan_hash},
        )
        return plan.shard_set.publish(manifest)


def _stage_all(plan: PackPlan, cfg: PackConfig, pending: list[int], progress: bool) -> None:
    total = sum(plan.refs[i].num_frames() for i in pending)
    with tqdm(total=total, unit="frame", desc="pack", disable=not progress) as bar:
        if cfg.workers == 1:
            for i in pending:
                stage_video(plan.refs[i], cfg, plan.staged(i))
                bar.update(plan.refs[i].num_frames())
        else:
            _stage_on_ray(plan, cfg, pending, bar)


def _stage_on_ray(plan: PackPlan, cfg: PackConfig, pending: list[int], bar: tqdm) -> None:
    connect_ray()
    in_flight_max = cfg.workers or cluster_cpus()
    # A task killed mid-video is retried by Ray; staging is atomic, so a retry is harmless.
    remote = ray.remote(num_cpus=1, max_retries=3)(stage_video)
    calls = [(plan.refs[i], cfg, plan.staged(i)) for i in pending]
    # a task's ShardError is raised here; the videos already staged stay for the rerun
    run_bounded(remote, calls, in_flight_max, lambda k, _: bar.update(calls[k][0].num_frames()))
