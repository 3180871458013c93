"""A readable summary of a shard set, and a contact sheet of a few clips to look at."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from shards.manifest import read_manifest
from shards.reader import Clip, clip_stream


def summary(folder: str | Path) -> dict:
    """Totals from the manifest plus per-source counts read from the clips' metadata."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.kind != "clips":  # e.g. mined pairs: their manifest carries the statistics
        return _manifest_summary(folder, manifest)
    per_source: Counter = Counter()
    frames_per_source: Counter = Counter()
    videos: set[tuple[str, str]] = set()
    labeled = 0
    stream = clip_stream(folder)
    for clip in stream:
        source = clip.meta["source"]
        per_source[source] += 1
        frames_per_source[source] += len(clip)
        videos.add((source, clip.meta["video"]))
        labeled += "gt" in clip.meta
    return {
        **_manifest_facts(folder, manifest),
        "videos": len(videos),
        "labeled_clips": labeled,
        "skipped": stream.skips.total,
        "sources": {
            s: {"clips": per_source[s], "frames": frames_per_source[s]} for s in sorted(per_source)
        },
    }


def _manifest_summary(folder: Path, manifest) -> dict:
    stats = {k: v for k, v in manifest.extra.items() if k != "plan_hash"}
    return {**_manifest_facts(folder, manifest), "statistics": stats}


def _manifest_facts(folder: Path, manifest) -> dict:
    """What the manifest alone says about a shard set of any kind."""
    return {
        "folder": str(folder),
        "kind": manifest.kind,
        "shards": len(manifest.shards),
        "samples": manifest.samples,
        "bytes": manifest.bytes,
        "lineage": manifest.lineage,
        "command": " ".join(manifest.command),
    }


def contact_sheet(folder: str | Path, out: str | Path, clips: int = 8, frames: int = 6) -> Path:
    """A PNG grid: the first clip of each of the first videos, frames spread over the clip."""
    rows, shown = [], set()
    for clip in clip_stream(folder):
        video = (clip.meta["source"], clip.meta["video"])
        if video in shown:
            continue
        shown.add(video)
        rows.append(_row(clip, frames))
        if len(rows) == clips:
            break
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    out = Path(out)
    cv2.imwrite(str(out), sheet)
    return out


def _row(clip: Clip, frames: int, height: int = 96) -> np.ndarray:
    picks = np.linspace(0, len(clip) - 1, frames).round().astype(int)
    tiles = []
    for i in picks:
        image = clip.frame(int(i))
        box = clip.gt(int(i))
        if box is not None:
            x, y, w, h = (int(round(v)) for v in box)
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
        scale = height / image.shape[0]
        tiles.append(cv2.resize(image, (max(1, round(image.shape[1] * scale)), height)))
    row = np.hstack(tiles)
    cv2.putText(row, clip.key, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    return row
