"""Pair sets cut from ground truth: the pairs mining would store, with known boxes.

For experiments that need pairs whose truth is known (the noise-robustness study adds
annotation noise to them on purpose, the supervised baseline trains on them) and for the
training benchmarks (which need real pair shards in seconds, without Ray or a model).

From each labeled clip, pairs of a seed frame and a frame 1..max_gap later: the template
side cut around the true box of the seed frame, the search side around the true box of
the later frame, moved by Gaussian noise of std `noise` x sqrt(w h) of the box when
`noise` > 0 (a simulated mining error; its draw is also the record's gt_error_px, and the
cycle error is the length of another draw). Same crops (jobs/pair_crops.py), JPEG quality
and records as mined pairs, one pair shard per clip shard, a manifest of kind 'pairs'.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jobs.pair_crops import crop_pair
from shards.errors import ShardError
from shards.manifest import (
    MANIFEST,
    Manifest,
    ShardEntry,
    read_manifest,
    sha256_file,
    write_manifest,
)
from shards.pairs import SHARD_PATTERN, PairRecord, pair_sample, summarize, write_pair_shard
from shards.reader import Clip, clip_stream

MIN_BOX = 8.0
"""Boxes smaller than this (pixels, either side) make no pair."""
SETTINGS_KEY = "truth_pairs"
"""Where a set's settings sit in its manifest's config (a rerun checks them)."""


def write_truth_pairs(
    clips: str | Path,
    out: str | Path,
    pairs: int,
    max_gap: int = 8,
    noise: float = 0.0,
    seed: int = 0,
    command: list[str] | None = None,
) -> Path:
    """About `pairs` pairs from the labeled clip set `clips` into `out` (kept when a rerun
    finds the same set there; ShardError when it holds another, or no clip has truth)."""
    clips, out = Path(clips), Path(out)
    settings = {"pairs": pairs, "seed": seed, "max_gap": max_gap, "noise": noise}
    if (out / MANIFEST).exists():
        if read_manifest(out).config.get(SETTINGS_KEY) != settings:
            raise ShardError(f"{out} holds another pair set; delete it or use another folder")
        return out
    manifest = read_manifest(clips)
    if manifest.kind != "clips":
        raise ShardError(f"{clips} holds {manifest.kind}, not clips")
    if not any(clip.meta.get("gt") for clip in clip_stream(clips)):
        raise ShardError(f"{clips}: no clip carries ground-truth boxes to cut pairs from")
    out.mkdir(parents=True, exist_ok=True)
    per_clip = math.ceil(pairs / max(1, manifest.samples))
    rng = np.random.default_rng(seed)
    entries, records = [], []
    for index, shard in enumerate(manifest.shards):
        samples = []
        for clip in clip_stream([clips / shard.name]):
            for record, z, x in cut_pairs(clip, per_clip, max_gap, noise, rng):
                samples.append(pair_sample(record, z, x))
                records.append(record)
        path = out / SHARD_PATTERN.format(index)
        count = write_pair_shard(path, samples)
        entries.append(ShardEntry(path.name, count, path.stat().st_size, sha256_file(path)))
    if not records:
        raise ShardError(f"{clips}: no clip has a labeled pair of frames {max_gap} or fewer apart")
    extra = {"source_lineage": manifest.lineage, **summarize(records, manifest.samples)}
    config = {SETTINGS_KEY: settings}
    write_manifest(out, Manifest("pairs", entries, command or ["pul"], config, extra))
    return out


def cut_pairs(
    clip: Clip, count: int, max_gap: int, noise: float, rng: np.random.Generator
) -> Iterator[tuple[PairRecord, np.ndarray, np.ndarray]]:
    """Up to `count` (record, z crop, x crop) of one clip, as mining would store them."""
    boxes = clip.meta.get("gt") or []
    frames: dict[int, np.ndarray] = {}
    for seed_index in range(count):
        gap = int(rng.integers(1, max_gap + 1))
        if len(boxes) <= gap:
            continue
        s = int(rng.integers(0, len(clip) - gap))
        t = s + gap
        seed_box, true_box = boxes[s], boxes[t]
        if seed_box is None or true_box is None or min(*seed_box[2:], *true_box[2:]) < MIN_BOX:
            continue
        size = math.sqrt(true_box[2] * true_box[3])
        dx, dy = rng.normal(0.0, noise * size, 2) if noise else (0.0, 0.0)
        box = (true_box[0] + dx, true_box[1] + dy, true_box[2], true_box[3])
        cycle = float(np.hypot(*rng.normal(0.0, noise * size, 2))) if noise else 0.0
        for i in (s, t):
            if i not in frames:
                frames[i] = clip.frame(i)
        seed_box = tuple(float(v) for v in seed_box)
        z, x, z_box, x_box = crop_pair(frames[s], seed_box, frames[t], box)
        record = PairRecord(
            clip=clip.key,
            seed_index=seed_index,
            seed_frame=s,
            target_frame=t,
            frames=(clip.meta["frames"][s], clip.meta["frames"][t]),
            gap=gap,
            seed_box=seed_box,
            box=tuple(float(v) for v in box),
            z_box=z_box,
            x_box=x_box,
            confidence=1.0,
            cycle_error=cycle,
            gt_error_px=float(np.hypot(dx, dy)),
        )
        yield record, z, x
