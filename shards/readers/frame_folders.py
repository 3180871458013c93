"""Frame-folder datasets (GOT-10k, ILSVRC2015 VID, LaSOT, OTB) become one VideoRef each.

Only paths are gathered here; frames are decoded later, where the clips are packed.
Ground truth is kept per frame as (x, y, w, h) in pixels, None where the target is absent
or its box is degenerate, so evaluation and the labeled baselines read it from the same
refs as the unsupervised stages, which ignore it.

Annotation files shorter than the frame list are padded with None rather than rejected:
the GOT-10k test split labels only the first frame, and some OTB sequences label only a
sub-range of their frames.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from shards.errors import ShardError
from shards.source import Box, VideoRef

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
GOT10K_FPS = 10.0  # GOT-10k frames were sampled at 10 fps; the others are ~30 fps footage
DEFAULT_FPS = 30.0
_SEPARATORS = re.compile(r"[,\s]+")
_DIGITS = re.compile(r"(\d+)")
Boxes = tuple[Box | None, ...]

# ---------------------------------------------------------------- shared helpers


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _natural_key(name: str) -> list[object]:
    """Sorts '2.jpg' before '10.jpg'; the same as plain name order for zero-padded names."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


def _subdirs(folder: Path) -> list[Path]:
    entries = [Path(e.path) for e in os.scandir(folder) if e.is_dir()]
    return sorted(entries, key=lambda p: _natural_key(p.name))


def has_images(folder: Path) -> bool:
    """True if the folder directly holds an image file (stops at the first one)."""
    return folder.is_dir() and any(e.is_file() and _is_image(e.name) for e in os.scandir(folder))


def list_frames(folder: Path) -> tuple[str, ...]:
    """Image files of a folder sorted by name; a ShardError if there are none."""
    if not folder.is_dir():
        raise ShardError(f"frame folder not found: {folder}")
    names = [e.name for e in os.scandir(folder) if e.is_file() and _is_image(e.name)]
    if not names:
        raise ShardError(f"no frames (jpg/jpeg/png) in {folder}")
    return tuple(str(folder / n) for n in sorted(names, key=_natural_key))


def _box(values: list[float]) -> Box | None:
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values) or w <= 0 or h <= 0:
        return None
    return (x, y, w, h)


def read_boxes(file: Path) -> list[Box | None]:
    """One x,y,w,h box per line (commas, tabs or spaces); degenerate or NaN boxes are None."""
    lines = file.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    boxes: list[Box | None] = []
    for number, line in enumerate(lines, start=1):
        fields = [f for f in _SEPARATORS.split(line.strip()) if f]
        if not fields:
            boxes.append(None)
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise ShardError(f"bad box on line {number} of {file}: {line.strip()!r}") from None
        if len(values) != 4:
            raise ShardError(f"expected 4 numbers (x,y,w,h) on line {number} of {file}")
        boxes.append(_box(values))
    return boxes


def read_flags(file: Path) -> list[bool]:
    """0/1 flags separated by commas, spaces or newlines (LaSOT, GOT-10k labels)."""
    fields = [f for f in _SEPARATORS.split(file.read_text().strip()) if f]
    try:
        return [int(float(f)) != 0 for f in fields]
    except ValueError:
        raise ShardError(f"expected 0/1 flags in {file}") from None


def _fit(boxes: list[Box | None], count: int) -> list[Box | None]:
    return (boxes + [None] * count)[:count]


def _mask(boxes: list[Box | None], absent: list[bool]) -> list[Box | None]:
    return [None if i < len(absent) and absent[i] else box for i, box in enumerate(boxes)]


def _folder_ref(
    source: str, folder: Path, frames: tuple[str, ...], gt: Boxes | None, fps: float = DEFAULT_FPS
) -> VideoRef:
    """A sequence is named after its folder, the convention of every benchmark here."""
    return VideoRef(
        source=source, name=folder.name, path=str(folder), frames=frames, gt=gt, fps=fps
    )


# ---------------------------------------------------------------- GOT-10k


def is_got10k_sequence(folder: Path) -> bool:
    return (folder / "groundtruth.txt").is_file() and has_images(folder)


def read_got10k(root: Path) -> list[VideoRef]:
    """A GOT-10k split folder (list.txt optional) or a single sequence folder."""
    root = root.absolute()
    if is_got10k_sequence(root):
        return [_got10k_sequence(root)]
    return [_got10k_sequence(folder) for folder in _got10k_folders(root)]


def _got10k_folders(root: Path) -> list[Path]:
    listing = root / "list.txt"
    if not listing.is_file():
        return [d for d in _subdirs(root) if has_images(d)]
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        raise ShardError(f"{listing} lists {len(missing)} missing sequences, e.g. {missing[0]}")
    return [root / n for n in names]


def _got10k_sequence(folder: Path) -> VideoRef:
    frames = list_frames(folder)
    gt = None
    if (folder / "groundtruth.txt").is_file():
        boxes = _fit(read_boxes(folder / "groundtruth.txt"), len(frames))
        if (folder / "absence.label").is_file():
            boxes = _mask(boxes, read_flags(folder / "absence.label"))
        gt = tuple(boxes)
    return _folder_ref("got10k", folder, frames, gt, GOT10K_FPS)


# ---------------------------------------------------------------- ILSVRC2015 VID


def is_vid_root(folder: Path) -> bool:
    """The dataset root, its Data/VID folder, or one split folder Data/VID/<split>."""
    if (folder / "Data" / "VID").is_dir():
        return True
    if folder.name == "VID" and folder.parent.name == "Data":
        return True
    return folder.parent.name == "VID" and folder.parent.parent.name == "Data"


def read_vid(root: Path) -> list[VideoRef]:
    """Every video (a leaf folder of frames) under Data/VID, with the first track's boxes."""
    refs = []
    for split in _vid_split_folders(root.absolute()):
        refs.extend(_vid_video(folder) for folder in _frame_leaves(split))
    return refs


def _vid_split_folders(root: Path) -> list[Path]:
    if (root / "Data" / "VID").is_dir():
        return _subdirs(root / "Data" / "VID")
    if root.name == "VID" and root.parent.name == "Data":
        return _subdirs(root)
    if root.parent.name == "VID" and root.parent.parent.name == "Data":
        return [root]
    raise ShardError(f"not an ILSVRC VID folder (expected Data/VID/<split>): {root}")


def _frame_leaves(folder: Path) -> list[Path]:
    """Folders below `folder` that hold frames, depth first in name order."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs.sort(key=_natural_key)
        if any(_is_image(f) for f in files):
            found.append(Path(top))
    return found


def _vid_annotation_folder(video: Path) -> Path:
    """.../Data/VID/<rel> -> .../Annotations/VID/<rel>."""
    parts = video.parts
    anchor = max(i for i in range(len(parts) - 1) if parts[i : i + 2] == ("Data", "VID"))
    return Path(*parts[:anchor], "Annotations", "VID", *parts[anchor + 2 :])


def _vid_video(folder: Path) -> VideoRef:
    frames = list_frames(folder)
    annotations = _vid_annotation_folder(folder)
    gt = _vid_first_track(annotations, frames) if annotations.is_dir() else None
    return _folder_ref("vid", folder, frames, gt)


def _vid_first_track(annotations: Path, frames: tuple[str, ...]) -> Boxes:
    """Per frame, the box of the smallest track id seen anywhere in the video."""
    per_frame = [_vid_objects(annotations / (Path(f).stem + ".xml")) for f in frames]
    track_ids = set().union(*per_frame)
    if not track_ids:
        return tuple(None for _ in frames)
    first = min(track_ids)
    return tuple(objects.get(first) for objects in per_frame)


def _vid_objects(xml_file: Path) -> dict[int, Box | None]:
    """Track id -> box of one frame's PASCAL VOC annotation; {} when the file is absent."""
    if not xml_file.is_file():
        return {}
    try:
        tree = ET.parse(xml_file)
        return {_vid_track_id(obj): _vid_box(obj) for obj in tree.getroot().iter("object")}
    except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
        raise ShardError(f"bad VID annotation {xml_file}: {err}") from None


def _vid_track_id(obj: ET.Element) -> int:
    return int(obj.findtext("trackid", default=""))


def _vid_box(obj: ET.Element) -> Box | None:
    box = obj.find("bndbox")
    xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    return _box([xmin, ymin, xmax - xmin, ymax - ymin])


# ---------------------------------------------------------------- LaSOT


def is_lasot_sequence(folder: Path) -> bool:
    return (folder / "img").is_dir() and (folder / "groundtruth.txt").is_file()


def read_lasot(root: Path) -> list[VideoRef]:
    """The LaSOT root (class folders), a single class folder or a single sequence folder."""
    return [_lasot_sequence(folder) for folder in _lasot_folders(root.absolute())]


def _lasot_folders(root: Path) -> list[Path]:
    if (root / "img").is_dir():
        return [root]
    children = [d for d in _subdirs(root) if (d / "img").is_dir()]
    if children:
        return children
    return [d for c in _subdirs(root) for d in _subdirs(c) if (d / "img").is_dir()]


def _lasot_sequence(folder: Path) -> VideoRef:
    frames = list_frames(folder / "img")
    gt = None
    if (folder / "groundtruth.txt").is_file():
        boxes = _fit(read_boxes(folder / "groundtruth.txt"), len(frames))
        for flags in ("full_occlusion.txt", "out_of_view.txt"):
            if (folder / flags).is_file():
                boxes = _mask(boxes, read_flags(folder / flags))
        gt = tuple(boxes)
    return _folder_ref("lasot", folder, frames, gt)


# ---------------------------------------------------------------- OTB


def otb_groundtruth(folder: Path) -> Path | None:
    """groundtruth_rect.txt; for OTB's two-target sequences (Jogging...) the first target."""
    if (folder / "groundtruth_rect.txt").is_file():
        return folder / "groundtruth_rect.txt"
    numbered = sorted(folder.glob("groundtruth_rect.*.txt"), key=lambda p: _natural_key(p.name))
    return numbered[0] if numbered else None


def is_otb_sequence(folder: Path) -> bool:
    return (folder / "img").is_dir() and otb_groundtruth(folder) is not None


def read_otb(root: Path) -> list[VideoRef]:
    """An OTB root of sequence folders or one sequence; source from root/source.txt if any."""
    root = root.absolute()
    if (root / "img").is_dir():  # one sequence: its dataset's source.txt sits one level up
        source = _otb_source_name(root if (root / "source.txt").is_file() else root.parent)
        return [_otb_sequence(root, source)]
    source = _otb_source_name(root)
    return [_otb_sequence(d, source) for d in _subdirs(root) if (d / "img").is_dir()]


def _otb_source_name(root: Path) -> str:
    """The synthetic generator writes OTB layout and names itself in source.txt."""
    file = root / "source.txt"
    words = file.read_text().split() if file.is_file() else []
    if len(words) > 1:
        raise ShardError(f"expected one word in {file}, got {len(words)}")
    return words[0] if words else "otb"


def _otb_sequence(folder: Path, source: str) -> VideoRef:
    frames = list_frames(folder / "img")
    gt_file = otb_groundtruth(folder)
    gt = tuple(_fit(read_boxes(gt_file), len(frames))) if gt_file else None
    return _folder_ref(source, folder, frames, gt)
