"""Tracking results as files, in the OTB text layout that published trackers share.

`<root>/<tracker>/<seq>.txt` holds one `x,y,w,h` line per frame, and optionally
`<root>/<tracker>/<seq>_time.txt` one line of seconds per frame. We write commas and three
decimals (the got10k toolkit's format); we read commas, tabs or spaces, because raw results
published by other projects (pysot, pytracking, the OTB and LaSOT toolkits) use all three.
Keeping results as files, not only as scores, lets any tracker's published raw results be
scored and plotted beside ours with the same code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from jobs.errors import JobError

_SEPARATORS = re.compile(r"[,\s]+")
_TIME_SUFFIX = "_time.txt"


class ResultsError(JobError):
    """A results file that is missing or malformed; the message names the file (and line)."""


def result_file(root: str | Path, tracker: str, seq: str) -> Path:
    return Path(root) / _safe(tracker) / f"{_safe(seq)}.txt"


def write_results(
    root: str | Path,
    tracker: str,
    seq: str,
    boxes: np.ndarray,
    times: np.ndarray | None = None,
) -> Path:
    """Writes one sequence's boxes (Nx4, xywh) and optional seconds per frame; returns the
    boxes file. Files are replaced atomically so an interrupted run leaves no half file."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"expected Nx4 boxes for {tracker}/{seq}, got shape {boxes.shape}")
    path = result_file(root, tracker, seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(path, boxes, fmt="%.3f", delimiter=",")
    if times is not None:
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(times) != len(boxes):
            raise ValueError(f"{len(times)} times for {len(boxes)} boxes of {tracker}/{seq}")
        _save(path.with_name(path.stem + _TIME_SUFFIX), times, fmt="%.8f")
    return path


def read_results(root: str | Path, tracker: str, seq: str) -> np.ndarray:
    """One sequence's boxes as an Nx4 float array ('nan' fields stay NaN)."""
    path = result_file(root, tracker, seq)
    if not path.is_file():
        raise ResultsError(f"no results of tracker {tracker!r} for sequence {seq!r}: {path}")
    rows = [_row(line, number, path) for number, line in enumerate(_lines(path), start=1)]
    if not rows:
        raise ResultsError(f"empty results file {path}")
    return np.asarray(rows, dtype=np.float64)


def read_times(root: str | Path, tracker: str, seq: str) -> np.ndarray | None:
    """Seconds per frame, or None without a time file; also finds the got10k toolkit's
    `times/<seq>_time.txt`. Several columns (repeated runs) are flattened."""
    boxes = result_file(root, tracker, seq)
    for path in (
        boxes.with_name(seq + _TIME_SUFFIX),
        boxes.parent / "times" / (seq + _TIME_SUFFIX),
    ):
        if path.is_file():
            fields = [f for line in _lines(path) for f in _SEPARATORS.split(line.strip()) if f]
            try:
                return np.asarray([float(f) for f in fields], dtype=np.float64)
            except ValueError:
                raise ResultsError(f"expected seconds per frame in {path}") from None
    return None


def discover_trackers(root: str | Path) -> list[str]:
    """Sorted names of the folders under `root` that hold at least one results file."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"results folder not found: {root}")
    folders = sorted(Path(e.path) for e in os.scandir(root) if e.is_dir())
    return [f.name for f in folders if any(_is_result(p) for p in f.glob("*.txt"))]


# ---------------------------------------------------------------- helpers


def _safe(name: str) -> str:
    """Tracker and sequence names are single path components, never a way out of root."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ResultsError(f"not a valid tracker or sequence name: {name!r}")
    return name


def _is_result(path: Path) -> bool:
    return path.is_file() and not path.name.endswith(_TIME_SUFFIX)


def _lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _row(line: str, number: int, path: Path) -> list[float]:
    fields = [f for f in _SEPARATORS.split(line.strip()) if f]
    try:
        values = [float(f) for f in fields]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ResultsError(f"{path}, line {number}: expected x,y,w,h, got {line.strip()[:60]!r}")
    return values


def _save(path: Path, values: np.ndarray, **savetxt_args: str) -> None:
    partial = path.with_name(path.name + ".partial")
    np.savetxt(partial, values, **savetxt_args)
    os.replace(partial, path)
