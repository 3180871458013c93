"""OTB-layout output of the synthetic generator, written so that it can be resumed.

```
OUT/source.txt                       'synth' (train split) or 'synthbench' (bench split)
OUT/synth.json                       config, photo lists, per-sequence attributes
OUT/<seq>/img/0001.jpg ...           frames
OUT/<seq>/groundtruth_rect.txt       one 'x,y,w,h' line per frame
```

Boxes are the full extent of the target's shape (also while it is occluded or partly out
of the frame, so a box may cross the frame border), in 0-based pixel-edge coordinates
(pixel column j spans [j, j + 1)), rounded to 2 decimals: x, y is the top-left corner.
This is how the got10k toolkit and most Python trackers read OTB files (no 1-based shift).

A sequence is rendered into a hidden sibling folder and renamed into place when complete,
and synth.json lists it only after that, so an interrupted run never leaves a half-written
sequence that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from shards.errors import ShardError
from shards.synth.config import SynthConfig
from shards.synth.photos import SPLIT_PHOTOS

MANIFEST = "synth.json"
SOURCE_NAMES = {"train": "synth", "bench": "synthbench"}


def open_output(out: Path, cfg: SynthConfig) -> dict:
    """The output folder's manifest: loaded if it exists (same config required), else new."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".synth-*.partial"):  # left by an interrupted run
        shutil.rmtree(stale)
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    path = out / MANIFEST
    if path.exists():
        manifest = _load(path)
        if manifest.get("config") != config:
            raise ShardError(
                f"{out} holds synthetic videos made with a different config; "
                f"use another folder or delete it (stored: {manifest.get('config')})"
            )
        return manifest
    manifest = {
        "generator": "shards.synth",
        "config": config,
        "photos": list(SPLIT_PHOTOS[cfg.split]),
        "box_format": "x,y,w,h; 0-based pixel-edge coordinates; full extent, even occluded",
        "sequences": {},
    }
    (out / "source.txt").write_text(SOURCE_NAMES[cfg.split] + "\n")
    save_manifest(out, manifest)
    return manifest


def is_complete(out: Path, name: str, manifest: dict) -> bool:
    return name in manifest["sequences"] and (out / name / "groundtruth_rect.txt").is_file()


def write_sequence(
    out: Path, name: str, frames: list[np.ndarray], boxes: np.ndarray, quality: int
) -> Path:
    """Write one sequence through a temporary sibling folder; returns its final folder."""
    temporary, final = out / f".{name}.partial", out / name
    shutil.rmtree(temporary, ignore_errors=True)
    (temporary / "img").mkdir(parents=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    for number, frame in enumerate(frames, start=1):
        if not cv2.imwrite(str(temporary / "img" / f"{number:04d}.jpg"), frame, params):
            raise ShardError(f"cannot write frame {number} of {name} under {temporary}")
    lines = [",".join(f"{v:.2f}" for v in box) for box in boxes]
    (temporary / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # a leftover without a manifest entry
    temporary.rename(final)
    return final


def save_manifest(out: Path, manifest: dict) -> None:
    """Replace synth.json atomically: a crash leaves the old or the new one, never half."""
    temporary = out / f".{MANIFEST}.partial"
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, out / MANIFEST)


def _load(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ShardError(f"cannot read {path}: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sequences"), dict):
        raise ShardError(f"{path} is not a synth manifest")
    return manifest
