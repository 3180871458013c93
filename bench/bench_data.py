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
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.config import to_dict
from jobs.truth_pairs import write_truth_pairs
from shards.manifest import Manifest, read_manifest
from shards.pack import assemble, plan_for, stage_video
from shards.pack_config import PackConfig
from shards.readers import read_sources
from shards.synth import SynthConfig, generate

MAX_GAP = 8
"""Largest temporal gap of the pairs (every gap from 1 to this occurs)."""
MINING_NOISE = 0.05
"""Std of the simulated mining error, as a fraction of sqrt(w h) of the box."""


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
    command = ["bench/bench_data.py"]
    return write_truth_pairs(clips, out, pairs, MAX_GAP, MINING_NOISE, seed, command)


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
