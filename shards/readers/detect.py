"""Which reader a source path needs, decided from its extension or its folder layout.

Checks run from the most specific layout to the least: a VID tree is recognised by its
fixed folder names, OTB and LaSOT both keep frames in `img/` but differ in the name of the
box file, and GOT-10k keeps frames directly in each sequence folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shards.errors import ShardError
from shards.readers.frame_folders import (
    is_got10k_sequence,
    is_lasot_sequence,
    is_otb_sequence,
    is_vid_root,
)
from shards.readers.video_file import VIDEO_EXTENSIONS
from shards.readers.vot import is_vot_root

LOOKED_FOR = (
    "ILSVRC VID (Data/VID/<split>/.../<video>/*.JPEG), "
    "OTB (<seq>/img/ + groundtruth_rect.txt, or source.txt), "
    "LaSOT ([<class>/]<seq>/img/ + groundtruth.txt), "
    "VOT (<seq>/color/ or polygon groundtruth.txt), "
    "GOT-10k (list.txt, or <seq>/*.jpg + groundtruth.txt)"
)


def detect_layout(path: str | Path) -> str:
    """'video', 'vid', 'otb', 'lasot' or 'got10k'; a ShardError naming the path otherwise."""
    path = Path(path)
    if not path.exists():
        raise ShardError(f"source not found: {path}")
    if path.is_file():
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return "video"
        raise ShardError(f"not a video file (expected {'/'.join(VIDEO_EXTENSIONS)}): {path}")
    for layout, matches in _FOLDER_LAYOUTS:
        if matches(path):
            return layout
    raise ShardError(f"unknown layout of {path}: looked for {LOOKED_FOR}")


def _children(folder: Path) -> list[Path]:
    return [child for child in folder.iterdir() if child.is_dir()]


def _is_otb(folder: Path) -> bool:
    if (folder / "source.txt").is_file() or is_otb_sequence(folder):
        return True
    return any(is_otb_sequence(child) for child in _children(folder))


def _is_lasot(folder: Path) -> bool:
    if is_lasot_sequence(folder):
        return True
    children = _children(folder)
    if any(is_lasot_sequence(child) for child in children):
        return True
    return any(is_lasot_sequence(seq) for child in children for seq in _children(child))


def _is_got10k(folder: Path) -> bool:
    if (folder / "list.txt").is_file() or is_got10k_sequence(folder):
        return True
    return any(is_got10k_sequence(child) for child in _children(folder))


_FOLDER_LAYOUTS: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("vid", is_vid_root),
    ("otb", _is_otb),
    ("lasot", _is_lasot),
    ("vot", is_vot_root),  # before GOT-10k: a VOT root has a list.txt too
    ("got10k", _is_got10k),
)
