"""Readers of raw video sources: user paths in, a sorted list of VideoRefs out.

The list is sorted by (source, name) so that packing the same sources twice assigns the
same clips to the same shards, whatever order the user typed the paths in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shards.errors import ShardError
from shards.readers.detect import detect_layout
from shards.readers.frame_folders import read_got10k, read_lasot, read_otb, read_vid
from shards.readers.video_file import read_video
from shards.readers.vot import read_vot
from shards.source import VideoRef, key_part

FORMATS = ("auto", "video", "got10k", "vid", "lasot", "otb", "vot")

_FOLDER_READERS: dict[str, Callable[[Path], list[VideoRef]]] = {
    "got10k": read_got10k,
    "vid": read_vid,
    "lasot": read_lasot,
    "otb": read_otb,
    "vot": read_vot,
}


def read_sources(paths: list[str], fmt: str = "auto", split_cuts: bool = True) -> list[VideoRef]:
    """Every video of every source path, sorted by (source, name, start); no duplicates."""
    if fmt not in FORMATS:
        raise ShardError(f"unknown source format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not paths:
        raise ShardError("no source paths given")
    refs: list[VideoRef] = []
    for path in paths:
        refs.extend(_read_one(Path(path), fmt, split_cuts))
    _check_unique(refs)
    return sorted(refs, key=lambda r: (r.source, r.name, r.start))


def _read_one(path: Path, fmt: str, split_cuts: bool) -> list[VideoRef]:
    if not path.exists():
        raise ShardError(f"source not found: {path}")
    layout = detect_layout(path) if fmt == "auto" else fmt
    if layout == "video" and path.is_file():
        refs = read_video(path, split_cuts)
    elif layout != "video" and path.is_dir():
        refs = _FOLDER_READERS[layout](path)
    else:
        kind = "file" if layout == "video" else "folder"
        raise ShardError(f"a {layout} source must be a {kind}: {path}")
    if not refs:
        raise ShardError(f"no {layout} videos found in {path}")
    return refs


def _check_unique(refs: list[VideoRef]) -> None:
    """Compared as clip keys will spell them, so 'a.b' and 'a-b' count as the same video."""
    seen: dict[tuple[str, str], VideoRef] = {}
    for ref in refs:
        key = (key_part(ref.source), key_part(ref.name))
        if key in seen:
            other = seen[key].path
            raise ShardError(f"duplicate video {ref.source}/{ref.name}: {other} and {ref.path}")
        seen[key] = ref
