"""VOT short-term datasets: a root with list.txt and one folder per sequence.

Frames sit in `<seq>/color/` (VOT2016 and later) or directly in `<seq>/` (VOT2013-2015);
`<seq>/groundtruth.txt` holds one region per frame, in one of three forms:

- `x,y,w,h`: an axis-aligned rectangle, kept as is;
- `x1,y1,x2,y2,x3,y3,x4,y4`: a rotated rectangle, which becomes the tight axis-aligned box
  of its four corners (min/max), as pytracking's VOT loader does. The got10k toolkit's
  `_corner2rect` instead shrinks that box about the corners' mean to the polygon's area
  (pysot's `get_axis_aligned_bbox`); the tight box is chosen here because it contains
  the whole target, which is what a box-regressing tracker is trained and scored on;
- `m<x0>,<y0>,<w>,<h>,<rle...>`: a VOT2020+ mask, whose header is the rectangle the mask
  is stored in; the VOT toolkit crops that to the mask's bounds, so it is kept as the box.

Degenerate or non-finite regions become None (no box), like the other frame-folder readers.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from shards.errors import ShardError
from shards.readers.frame_folders import DEFAULT_FPS, has_images, list_frames
from shards.source import Box, VideoRef

_SEPARATORS = re.compile(r"[,\s]+")


def is_vot_sequence(folder: Path) -> bool:
    """A sequence folder that only VOT writes: color/ frames, a `sequence` file, *.tag
    attribute files or polygon/mask regions; flat x,y,w,h folders look like GOT-10k's."""
    gt = folder / "groundtruth.txt"
    if not gt.is_file():
        return False
    if has_images(folder / "color") or (folder / "sequence").is_file():
        return True
    if not has_images(folder):
        return False
    return any(folder.glob("*.tag")) or _first_region_is_vot_only(gt)


def is_vot_root(folder: Path) -> bool:
    """One VOT sequence, or a folder holding at least one."""
    if is_vot_sequence(folder):
        return True
    return any(is_vot_sequence(Path(e.path)) for e in os.scandir(folder) if e.is_dir())


def read_vot(root: Path) -> list[VideoRef]:
    """Every sequence of a VOT root (list.txt order, else folder names) or one sequence."""
    root = root.absolute()
    if is_vot_sequence(root):
        return [_vot_sequence(root)]
    return [_vot_sequence(folder) for folder in _vot_folders(root)]


def read_regions(file: Path) -> list[Box | None]:
    """One box (or None) per line of a VOT groundtruth.txt; see the module docstring."""
    lines = file.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [_region(line.strip(), number, file) for number, line in enumerate(lines, start=1)]


def _vot_folders(root: Path) -> list[Path]:
    listing = root / "list.txt"
    if not listing.is_file():
        children = [Path(e.path) for e in os.scandir(root) if e.is_dir()]
        return sorted((c for c in children if is_vot_sequence(c)), key=lambda p: p.name)
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        raise ShardError(f"{listing} lists {len(missing)} missing sequences, e.g. {missing[0]}")
    return [root / n for n in names]


def _vot_sequence(folder: Path) -> VideoRef:
    frame_folder = folder / "color" if (folder / "color").is_dir() else folder
    frames = list_frames(frame_folder)
    gt = None
    if (folder / "groundtruth.txt").is_file():
        # Padded or cut to the frame count, as the other frame-folder readers do.
        boxes = read_regions(folder / "groundtruth.txt")
        gt = tuple((boxes + [None] * len(frames))[: len(frames)])
    return VideoRef(
        source="vot", name=folder.name, path=str(folder), frames=frames, gt=gt, fps=DEFAULT_FPS
    )


def _region(line: str, number: int, file: Path) -> Box | None:
    if not line:
        return None
    mask = line.startswith("m")
    fields = [f for f in _SEPARATORS.split(line[1:] if mask else line) if f]
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise ShardError(f"bad region on line {number} of {file}: {line[:60]!r}") from None
    if mask and len(values) >= 4:
        return _rect(values[:4])
    if not mask and len(values) == 4:
        return _rect(values)
    if not mask and len(values) == 8:
        return _polygon_box(values)
    raise ShardError(
        f"expected x,y,w,h, 8 polygon coordinates or an m-mask on line {number} of {file}"
    )


def _polygon_box(values: list[float]) -> Box | None:
    if not all(math.isfinite(v) for v in values):  # min/max would skip a NaN corner
        return None
    xs, ys = values[0::2], values[1::2]
    return _rect([min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])


def _rect(values: list[float]) -> Box | None:
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values) or w <= 0 or h <= 0:
        return None
    return (x, y, w, h)


def _first_region_is_vot_only(file: Path) -> bool:
    """Polygons and masks: forms that no other layout read here writes."""
    with file.open() as f:
        first = f.readline().strip()
    fields = [field for field in _SEPARATORS.split(first) if field]
    return first.startswith("m") or len(fields) == 8
