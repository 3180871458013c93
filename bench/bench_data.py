"""Real shards for the training benchmarks, built without Ray in a few seconds.

    python bench/bench_data.py --out DIR [--quick]

Three steps, each kept when a rerun finds it done:

1. synthetic videos (shards.synth, OTB layout, ground truth written beside the frames);
2. clip shards packed from them in this process (shards.pack's staging and assembly: the
   same bytes `pul shards pack` writes; jobs.pack would start Ray, which the GPU image
   lacks), for stage 1;
3. a pair-shard set for stage 3 in the format mining writes (shards.pairs), cut with
   pul.crops around the ground-truth boxes: the template side around the box of a seed
   frame, the search side around a "mined" box 1..MAX_GAP frames later, which is the true
   box moved by Gaussian noise (MINING_NOISE of the box size), as mining's localisation
   error would move it; the cycle error is the length of another such draw. Pairs are the
   same size, the same JPEG quality and the same records as mined ones, so reading and
   decoding them costs what it costs in a real run.
"""

# ruff: noqa: E402 (the repository root goes on sys.path before its imports)
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.config import to_dict
from pul.crops import box_center, context_size, crop_and_resize, search_size
from shards.errors import ShardError
from shards.manifest import (
    MANIFEST,
    Manifest,
    ShardEntry,
    read_manifest,
    sha256_file,
    write_manifest,
)
from shards.pack import assemble, plan_for, stage_video
from shards.pack_config import PackConfig
from shards.pairs import (
    SHARD_PATTERN,
    X_OUT,
    X_SIDE,
    Z_OUT,
    Z_SIDE,
    PairRecord,
    box_in_crop,
    pair_sample,
    summarize,
    write_pair_shard,
)
from shards.reader import Clip, clip_stream
from shards.readers import read_sources
from shards.synth import SynthConfig, generate

MAX_GAP = 8
"""Largest temporal gap of the pairs (every gap from 1 to this occurs)."""
MINING_NOISE = 0.05
"""Std of the simulated mining error, as a fraction of sqrt(w h) of the box."""
MIN_BOX = 8.0
"""Boxes smaller than this (pixels, either side) make no pair."""


@dataclass(frozen=True)
class DataSize:
    videos: int
    frames: int
    pairs: int


FULL = DataSize(videos=16, frames=96, pairs=2048)
QUICK = DataSize(videos=6, frames=64, pairs=512)


@dataclass(frozen=True)
class BenchData:
    clips: Path
    """Clip shards (stage 1)."""
    pairs: Path
    """Pair shards (stage 3)."""


def ensure_data(folder: Path, size: DataSize, progress: bool = False) -> BenchData:
    """The benchmark's shards under `folder`, built unless a previous run left them."""
    folder = Path(folder)
    videos = folder / "synth"
    generate(SynthConfig(videos=size.videos, frames=size.frames), videos, progress=progress)
    clips = pack_clips(videos, folder / "clips")
    pairs = write_pair_set(clips, folder / "pairs", size.pairs)
    return BenchData(clips, pairs)


def pack_clips(videos: Path, out: Path) -> Path:
    """Clip shards of the OTB folder `videos`, packed in this process (what jobs.pack does
    with workers=1, without importing Ray)."""
    cfg = PackConfig(sources=[str(videos)], format="otb", workers=1, shard_mb=4.0)
    refs = read_sources(list(cfg.sources), cfg.format, cfg.split_cuts)
    plan = plan_for(out, refs, cfg)
    if plan.shard_set.finished() is not None:
        return out
    with plan.shard_set.writing():
        plan.shard_set.start()
        for index in plan.pending():
            stage_video(plan.refs[index], cfg, plan.staged(index))
        entries, frames = assemble(plan, cfg)
        manifest = Manifest(
            kind="clips",
            shards=entries,
            command=["bench/bench_data.py"],
            config=to_dict(cfg),
            extra={"videos": len(refs), "frames": frames, "plan_hash": plan.plan_hash},
        )
        plan.shard_set.publish(manifest)
    return out


def write_pair_set(clips: Path, out: Path, pairs: int, seed: int = 0) -> Path:
    """About `pairs` pairs cut from the clips of `clips`, one pair shard per clip shard."""
    settings = {"pairs": pairs, "seed": seed, "max_gap": MAX_GAP, "noise": MINING_NOISE}
    if (out / MANIFEST).exists():
        if read_manifest(out).config.get("bench") != settings:
            raise ShardError(f"{out} holds other benchmark pairs; delete it or use another dir")
        return out
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(clips)
    per_clip = math.ceil(pairs / manifest.samples)
    rng = np.random.default_rng(seed)
    entries, records = [], []
    for index, shard in enumerate(manifest.shards):
        samples = []
        for clip in clip_stream([clips / shard.name]):
            for record, z, x in cut_pairs(clip, per_clip, rng):
                samples.append(pair_sample(record, z, x))
                records.append(record)
        path = out / SHARD_PATTERN.format(index)
        count = write_pair_shard(path, samples)
        entries.append(ShardEntry(path.name, count, path.stat().st_size, sha256_file(path)))
    extra = summarize(records, manifest.samples)
    write_manifest(
        out,
        Manifest("pairs", entries, ["bench/bench_data.py"], {"bench": settings}, extra),
    )
    return out


def cut_pairs(clip: Clip, count: int, rng: np.random.Generator):
    """Up to `count` (record, z crop, x crop) of one clip, as mining would store them."""
    boxes = clip.meta.get("gt") or []
    frames: dict[int, np.ndarray] = {}
    for seed_index in range(count):
        gap = int(rng.integers(1, MAX_GAP + 1))
        if gap >= len(clip):
            continue
        s = int(rng.integers(0, len(clip) - gap))
        t = s + gap
        seed_box, true_box = boxes[s], boxes[t]
        if seed_box is None or true_box is None or min(*seed_box[2:], *true_box[2:]) < MIN_BOX:
            continue
        size = math.sqrt(true_box[2] * true_box[3])
        dx, dy = rng.normal(0.0, MINING_NOISE * size, 2)
        box = (true_box[0] + dx, true_box[1] + dy, true_box[2], true_box[3])
        cycle_error = float(np.hypot(*rng.normal(0.0, MINING_NOISE * size, 2)))
        for i in (s, t):
            if i not in frames:
                frames[i] = clip.frame(i)
        z, x, z_box, x_box = crop_pair(frames[s], tuple(seed_box), frames[t], box)
        record = PairRecord(
            clip=clip.key,
            seed_index=seed_index,
            seed_frame=s,
            target_frame=t,
            frames=(clip.meta["frames"][s], clip.meta["frames"][t]),
            gap=gap,
            seed_box=tuple(float(v) for v in seed_box),
            box=tuple(float(v) for v in box),
            z_box=z_box,
            x_box=x_box,
            confidence=float(rng.uniform(0.5, 1.0)),
            cycle_error=cycle_error,
        )
        yield record, z, x


def crop_pair(frame_z: np.ndarray, seed_box: tuple, frame_x: np.ndarray, box: tuple) -> tuple:
    """(z crop, x crop, seed box in z, box in x) with the margins of shards.pairs: the
    geometry of jobs.mine.crop_pair (which cannot be imported here: jobs.mine needs Ray)."""
    z_centre = box_center(seed_box)
    z_side = Z_SIDE * context_size(seed_box[2], seed_box[3])
    x_centre = box_center(box)
    x_side = X_SIDE * search_size(context_size(box[2], box[3]))
    return (
        crop_and_resize(frame_z, z_centre, z_side, Z_OUT),
        crop_and_resize(frame_x, x_centre, x_side, X_OUT),
        box_in_crop(seed_box, z_centre, z_side, Z_OUT),
        box_in_crop(box, x_centre, x_side, X_OUT),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the shards")
    parser.add_argument("--quick", action="store_true", help=f"smaller set: {asdict(QUICK)}")
    args = parser.parse_args()
    data = ensure_data(args.out, QUICK if args.quick else FULL, progress=True)
    pairs, clips = read_manifest(data.pairs), read_manifest(data.clips)
    summary = {"clips": str(data.clips), "clip_samples": clips.samples}
    summary.update({"pairs": str(data.pairs), "pair_samples": pairs.samples})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
