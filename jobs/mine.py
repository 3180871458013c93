"""The mine job (stage 2): clip shards + a BD model -> pair shards of mined correspondences.

One Ray task per input clip shard: it loads the model once, mines every clip of its shard
(`pul.mining.mine_clip`) and writes all their pairs into ONE pair shard, atomically, into
`OUT/.staging/pairs-NNNNNN.tar` (N = the input shard's position in its manifest). A task's
random draws are seeded by (seed, shard index, clip number), so a shard's bytes depend on
nothing but its input, the model and the config: a rerun skips the shards already written,
and a task killed mid-shard and retried by Ray (`max_retries`) rewrites the same bytes, so
no pair is lost or duplicated. When every shard is written they move into OUT and the
manifest is written last (kind 'pairs', with mining statistics in `extra`).

A damaged clip (a frame failing its CRC-32, bad metadata, an unreadable tar) is skipped;
each task leaves the keys it skipped beside its staged shard (`pairs-NNNNNN.damaged.json`),
and the manifest records them (`skipped_clips`, `damaged_shards`) and marks the source
lineage (`source_lineage` + '+damaged'): the pairs do not come from the set that lineage
names. More damaged clips than `max_damaged` of the set (and `max_damaged_floor`) stop the
job with one line naming the shards.

A finished folder is reused when rerun with the same inputs and config; one whose shard
files went missing is completed (the lost shards are mined again, to the same bytes); a
folder holding another set is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import ray
import torch
from tqdm import tqdm

from jobs.config import save_config, to_dict
from jobs.errors import JobError
from jobs.pair_crops import crop_pair
from jobs.runtime import cluster_cpus, connect_ray, run_bounded
from pul.boxes import iou
from pul.crops import box_center
from pul.mining import MinedPair, MiningConfig, mine_clip
from pul.models.siamese import SiamNet
from pul.weights import load_weights
from shards.manifest import (
    DAMAGED_SUFFIX,
    Manifest,
    ShardEntry,
    read_manifest,
    sha256_file,
)
from shards.pairs import (
    SHARD_PATTERN,
    PairRecord,
    pair_sample,
    read_records,
    summarize,
    write_pair_shard,
)
from shards.reader import Clip, SkipCounter, clip_stream, damage_message
from shards.staged_set import StagedSet

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
GT_MIN_IOU = 0.5
"""A seed overlapping the hidden target box this much is 'on the target' (measured pairs)."""


@dataclass
class MineJobConfig:
    data: str = ""
    """Clip-shard folder to mine (made by `pul shards pack`)."""
    model: str = ""
    """Model file whose features track the seeds and whose embeddings rank them (stage 1's
    BD model; later rounds: a stage-3 tracker)."""
    mining: MiningConfig = field(default_factory=MiningConfig)
    """How seeds are proposed, tracked and verified."""
    workers: int = 0
    """Shards mined at once: 0 = one Ray task per CPU of the Ray cluster, 1 = in this process,
    N = at most N Ray tasks."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where the model runs; 'cuda' makes every Ray task reserve gpus_per_task of a GPU.
    Part of what defines the set: float results differ slightly between devices."""
    gpus_per_task: float = 0.25
    """Fraction of a GPU each Ray task reserves with device=cuda (tracking one target at a
    time leaves a GPU mostly idle, so several tasks share one)."""
    jpeg_quality: int = 90
    """JPEG quality (1-100) of the stored crops."""
    seed: int = 0
    """Seeds the seed frames and seed boxes (with the shard and clip numbers)."""
    max_damaged: float = 0.01
    """Share of the set's clips that may be damaged (a frame failing its CRC-32, bad
    metadata, an unreadable tar): they are skipped and recorded in the manifest; more than
    this share (and than max_damaged_floor) stops the job with one line naming the shards."""
    max_damaged_floor: int = 5
    """Damaged clips always tolerated, whatever their share."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (auto) or more, got {self.workers}")
        if not 0.0 < self.gpus_per_task <= 1.0:
            raise ValueError(f"gpus_per_task must be in (0, 1], got {self.gpus_per_task}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if not 0 <= self.max_damaged <= 1 or self.max_damaged_floor < 0:
            raise ValueError("need 0 <= max_damaged <= 1 and max_damaged_floor >= 0")

    def content_fields(self) -> dict:
        """What decides the pair shards' bytes, besides the input data and the model."""
        skip = {"data", "model", "workers", "gpus_per_task", "max_damaged", "max_damaged_floor"}
        return {k: v for k, v in to_dict(self).items() if k not in skip}


@dataclass
class MinePlan:
    inputs: list[Path]
    """The clip shards, in manifest order: pair shard i is mined from inputs[i]."""
    shard_set: StagedSet

    @property
    def out(self) -> Path:
        return self.shard_set.out

    @property
    def plan_hash(self) -> str:
        return self.shard_set.plan_hash

    def staged(self, index: int) -> Path:
        return self.shard_set.staged(SHARD_PATTERN.format(index))

    def final(self, index: int) -> Path:
        return self.out / SHARD_PATTERN.format(index)

    def damage_record(self, index: int) -> Path:
        return damage_record(self.staged(index))

    def pending(self) -> list[int]:
        """Shards not mined yet; a staged one without its damage record was interrupted
        between the two writes and is mined again (to the same bytes)."""
        return [
            i
            for i in range(len(self.inputs))
            if not (
                self.final(i).exists()
                or (self.staged(i).exists() and self.damage_record(i).exists())
            )
        ]


def mine(
    cfg: MineJobConfig, out: str | Path, command: list[str] | None = None, progress: bool = True
) -> Manifest:
    """Mine the clip shards `cfg.data` with the model `cfg.model` into pair shards in `out`."""
    out = Path(out)
    source, model = _check_inputs(cfg)
    model_sha256 = sha256_file(model)
    digest = plan_hash(source, model_sha256, cfg)
    inputs = [Path(cfg.data).resolve() / s.name for s in source.shards]
    plan = MinePlan(inputs, StagedSet(out, digest, "mining"))
    done = _finished_set(plan, source)
    if done is not None:
        log.info("%s already holds this pair set; nothing to do", out)
        return done
    with plan.shard_set.writing():
        plan.shard_set.start()
        pending = plan.pending()
        if len(pending) < len(plan.inputs):
            log.info(
                "resuming: %d of %d shards already mined",
                len(plan.inputs) - len(pending),
                len(plan.inputs),
            )
        _mine_all(plan, cfg, model, pending, progress)
        damage = _check_damage(plan, source, cfg)
        entries, records = _publish(plan)
        save_config(cfg, out / CONFIG_FILE)
        extra = {
            "plan_hash": digest,
            "source_lineage": source.lineage + (DAMAGED_SUFFIX if damage else ""),
            "model_sha256": model_sha256,
            "skipped_clips": sum(d["skipped"] for d in damage.values()),
            "damaged_shards": damage,
        }
        manifest = Manifest(
            kind="pairs",
            shards=entries,
            command=command if command is not None else sys.argv,
            config=to_dict(cfg),
            extra={**extra, **summarize(records, clips=source.samples)},
        )
        return plan.shard_set.publish(manifest)


def _check_inputs(cfg: MineJobConfig) -> tuple[Manifest, Path]:
    """The input clip set's manifest and the model file's absolute path, or a JobError."""
    if not cfg.data or not cfg.model:
        raise JobError("mining needs data=DIR (clip shards) and model=FILE (a BD model)")
    source = read_manifest(Path(cfg.data))  # refuses a missing or unfinished shard set
    if source.kind != "clips":
        raise JobError(f"{cfg.data} holds {source.kind!r} shards; mining reads clip shards")
    model = Path(cfg.model).resolve()  # absolute: Ray workers run in folders of their own
    if not model.is_file():
        raise JobError(f"no such model file: {model}")
    try:
        load_weights(model)  # a bad model file fails here, in one line, not in every task
    except ValueError as err:
        raise JobError(str(err)) from None
    return source, model


def plan_hash(source: Manifest, model_sha256: str, cfg: MineJobConfig) -> str:
    """What decides the pair shards' bytes: the clips (by lineage), the model, the config."""
    blob = {"clips": source.lineage, "model": model_sha256, "config": cfg.content_fields()}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _finished_set(plan: MinePlan, source: Manifest) -> Manifest | None:
    """The finished set in `out` if it is this very one and whole; an error if another.
    One whose shard files went missing is reopened, to mine just those again."""
    manifest = plan.shard_set.finished()
    if manifest is None:
        return None
    missing = plan.shard_set.missing_shards(manifest)
    if not missing:
        return manifest
    log.warning(
        "%s lacks %d of its shards (%s); mining them again",
        plan.out,
        len(missing),
        ", ".join(missing[:3]),
    )
    _restore_damage_records(plan, source, manifest, missing)
    plan.shard_set.reopen(missing)
    return None


def _mine_all(
    plan: MinePlan, cfg: MineJobConfig, model: Path, pending: list[int], progress: bool
) -> None:
    with tqdm(total=len(pending), unit="shard", desc="mine", disable=not progress) as bar:
        if cfg.workers == 1:
            if cfg.device == "cuda" and not torch.cuda.is_available():
                raise JobError("device=cuda, but this machine has no CUDA device")
            for i in pending:
                mine_shard(plan.inputs[i], i, plan.staged(i), model, cfg)
                bar.update()
        else:
            _mine_on_ray(plan, cfg, model, pending, bar)


def _mine_on_ray(
    plan: MinePlan, cfg: MineJobConfig, model: Path, pending: list[int], bar: tqdm
) -> None:
    connect_ray()
    gpus = cfg.gpus_per_task if cfg.device == "cuda" else 0
    if gpus and not ray.cluster_resources().get("GPU"):
        raise JobError("device=cuda, but the Ray cluster has no GPU")
    in_flight_max = cfg.workers or cluster_cpus()
    # A task killed mid-shard is retried; its output is atomic and deterministic.
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=3)(mine_shard)
    calls = [(plan.inputs[i], i, plan.staged(i), model, cfg) for i in pending]
    # a task's error is raised here; the shards already written stay for the rerun
    run_bounded(remote, calls, in_flight_max, lambda k, _: bar.update())


def mine_shard(source: Path, index: int, target: Path, model: Path, cfg: MineJobConfig) -> int:
    """Mine every clip of one clip shard into one pair shard (atomically); returns its pairs."""
    net = load_weights(model, cfg.device)
    counter = itertools.count()

    def mine_one(clip: Clip) -> list[dict]:
        rng = np.random.default_rng([cfg.seed, index, next(counter)])
        return clip_samples(clip, net, cfg, rng)

    skips = SkipCounter()  # no limit here: the job weighs the damage of all shards together
    stream = clip_stream([source], transform=mine_one, skips=skips)
    count = write_pair_shard(target, (s for samples in stream for s in samples))
    record = {"source": source.name, "read": skips.read, "damaged": _damaged_keys(skips)}
    write_json_atomically(damage_record(target), record)
    return count


def damage_record(shard: Path) -> Path:
    """Where the clips a mining task skipped as damaged are listed, beside its shard."""
    return shard.with_name(shard.name.removesuffix(".tar") + ".damaged.json")


def _damaged_keys(skips: SkipCounter) -> list[str]:
    """Keys of the damaged clips ('' for a tar that could not be read through)."""
    return sorted(key for keys in skips.damaged.values() for key in keys)


def write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)


def clip_samples(
    clip: Clip, net: SiamNet, cfg: MineJobConfig, rng: np.random.Generator
) -> list[dict]:
    """The pair samples of one clip. Ground truth, when the clip has it, is read only after
    mining, to measure it (gt_error_px)."""
    frames = [clip.frame(i) for i in range(len(clip))]
    samples = []
    for pair in mine_clip(frames, net, cfg.mining, rng):
        z, x, z_box, x_box = crop_pair(
            frames[pair.seed_frame], pair.seed_box, frames[pair.target_frame], pair.box
        )
        record = PairRecord(
            clip=clip.key,
            seed_index=pair.seed_index,
            seed_frame=pair.seed_frame,
            target_frame=pair.target_frame,
            frames=(clip.meta["frames"][pair.seed_frame], clip.meta["frames"][pair.target_frame]),
            gap=pair.gap,
            seed_box=pair.seed_box,
            box=pair.box,
            z_box=z_box,
            x_box=x_box,
            confidence=pair.confidence,
            cycle_error=pair.cycle_error,
            gt_error_px=gt_error(clip, pair),
        )
        samples.append(pair_sample(record, z, x, cfg.jpeg_quality))
    return samples


def gt_error(clip: Clip, pair: MinedPair) -> float | None:
    """How far (frame pixels) the mined box's centre is from where the seed's centre went,
    for a seed on the hidden target (IoU >= GT_MIN_IOU with its true box); None otherwise.

    Where the seed's centre went: the true centre at the target frame plus the seed's
    offset from the true centre at the seed frame, scaled with the target's size. A seed on
    the background has no known motion, hence no error.
    """
    before, after = clip.gt(pair.seed_frame), clip.gt(pair.target_frame)
    if before is None or after is None or min(before[2:]) <= 0 or min(after[2:]) <= 0:
        return None
    if iou(pair.seed_box, before) < GT_MIN_IOU:
        return None
    scale = np.sqrt(after[2] * after[3] / (before[2] * before[3]))
    offset = np.subtract(box_center(pair.seed_box), box_center(before)) * scale
    expected = np.add(box_center(after), offset)
    return float(np.hypot(*(np.array(box_center(pair.box)) - expected)))


def _check_damage(plan: MinePlan, source: Manifest, cfg: MineJobConfig) -> dict[str, dict]:
    """The damaged clips, by clip shard: {name: {"skipped", "keys", "read"}}, only shards
    with damage. Past the configured share: a JobError naming them, and the pair shards
    mined from them are dropped, so that a rerun on repaired data mines them again."""
    damage = {}
    for i, entry in enumerate(source.shards):
        record = json.loads(plan.damage_record(i).read_text())
        keys = record["damaged"]
        # an unreadable tar hides how many clips it held: count those it did not yield
        skipped = entry.samples - record["read"] + len([k for k in keys if k])
        if skipped:
            damage[entry.name] = {"skipped": skipped, "keys": keys, "read": record["read"]}
    skipped = sum(d["skipped"] for d in damage.values())
    if skipped > max(cfg.max_damaged_floor, cfg.max_damaged * source.samples):
        for i, entry in enumerate(source.shards):
            if entry.name in damage:
                for path in (plan.staged(i), plan.final(i), plan.damage_record(i)):
                    path.unlink(missing_ok=True)
        folder = Path(cfg.data).resolve()
        raise JobError(
            damage_message(
                skipped,
                source.samples,
                cfg.max_damaged,
                cfg.max_damaged_floor,
                [folder / name for name in damage],
            )
        )
    return damage


def _restore_damage_records(
    plan: MinePlan, source: Manifest, manifest: Manifest, lost: list[str]
) -> None:
    """A finished set about to be reopened: the kept shards' damage records come back from
    its manifest (their staging is long gone), so the new manifest still lists them."""
    damage = manifest.extra.get("damaged_shards", {})
    plan.shard_set.staging.mkdir(parents=True, exist_ok=True)
    for i, entry in enumerate(source.shards):
        if plan.final(i).name in lost:
            continue
        found = damage.get(entry.name, {"keys": [], "read": entry.samples})
        record = {"source": entry.name, "read": found["read"], "damaged": found["keys"]}
        write_json_atomically(plan.damage_record(i), record)


def _publish(plan: MinePlan) -> tuple[list[ShardEntry], list[PairRecord]]:
    """Move the staged shards into `out`; their manifest entries and records."""
    entries, records = [], []
    for i in range(len(plan.inputs)):
        if plan.staged(i).exists():
            plan.staged(i).replace(plan.final(i))
        path = plan.final(i)
        shard_records = list(read_records(path))
        entries.append(
            ShardEntry(path.name, len(shard_records), path.stat().st_size, sha256_file(path))
        )
        records += shard_records
    return entries, records
