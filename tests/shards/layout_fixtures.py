"""Tiny fake datasets in each raw layout, written into a test's tmp_path.

Frames are 32x24 JPEGs whose gray level encodes their index, so a test can tell frames
apart after decoding. Each builder returns the folder to hand to a reader.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (32, 24)  # width, height


def write_frames(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        image = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 20 + 10 * index, np.uint8)
        assert cv2.imwrite(str(folder / name), image)
        paths.append(folder / name)
    return paths


def numbered(count: int, digits: int, ext: str = ".jpg", first: int = 1) -> list[str]:
    return [f"{i:0{digits}d}{ext}" for i in range(first, first + count)]


def tiny_got10k(root: Path) -> Path:
    """A split folder: a 4-frame train sequence (frame 3 absent) and a 3-frame test one."""
    split = root / "train"
    train = split / "GOT-10k_Train_000001"
    write_frames(train, numbered(4, 8))
    (train / "groundtruth.txt").write_text("1,2,10,8\n2,3,10,8\n3,4,10,8\n4.5,5,11,9\n")
    (train / "absence.label").write_text("0\n0\n1\n0\n")
    (train / "meta_info.ini").write_text("[METAINFO]\n")  # not a frame, must be ignored
    test = split / "GOT-10k_Test_000002"
    write_frames(test, numbered(3, 8))
    (test / "groundtruth.txt").write_text("5,6,7,8\n")
    (split / "list.txt").write_text("GOT-10k_Train_000001\nGOT-10k_Test_000002\n")
    return split


def _vid_xml(objects: list[tuple[int, tuple[int, int, int, int]]]) -> str:
    parts = ["<annotation><folder>x</folder><size><width>32</width><height>24</height></size>"]
    for trackid, (xmin, ymin, xmax, ymax) in objects:
        parts.append(
            f"<object><trackid>{trackid}</trackid><name>n01503061</name><bndbox>"
            f"<xmax>{xmax}</xmax><xmin>{xmin}</xmin><ymax>{ymax}</ymax><ymin>{ymin}</ymin>"
            "</bndbox><occluded>0</occluded></object>"
        )
    return "".join(parts) + "</annotation>"


VID_TRAIN_VIDEO = "ILSVRC2015_train_00000000"
VID_VAL_VIDEO = "ILSVRC2015_val_00000000"


def tiny_vid(root: Path) -> Path:
    """ILSVRC2015 layout: a labeled train video (two tracks), a val video, an unlabeled test."""
    vid = root / "ILSVRC2015"
    train_rel = Path("train", "ILSVRC2015_VID_train_0000", VID_TRAIN_VIDEO)
    write_frames(vid / "Data" / "VID" / train_rel, numbered(3, 6, ".JPEG", first=0))
    train_xml = vid / "Annotations" / "VID" / train_rel
    train_xml.mkdir(parents=True)
    # Track 1 appears first, track 0 only in frame 1: the smallest id (0) must win.
    (train_xml / "000000.xml").write_text(_vid_xml([(1, (1, 2, 12, 14))]))
    (train_xml / "000001.xml").write_text(_vid_xml([(1, (2, 2, 12, 14)), (0, (3, 4, 13, 16))]))
    (train_xml / "000002.xml").write_text(_vid_xml([]))
    val_rel = Path("val", VID_VAL_VIDEO)
    write_frames(vid / "Data" / "VID" / val_rel, numbered(2, 6, ".JPEG", first=0))
    val_xml = vid / "Annotations" / "VID" / val_rel
    val_xml.mkdir(parents=True)
    (val_xml / "000000.xml").write_text(_vid_xml([(0, (0, 0, 8, 6))]))
    # 000001.xml deliberately missing: that frame has no box.
    write_frames(vid / "Data" / "VID" / "test" / "ILSVRC2015_test_00000000", numbered(2, 6))
    return vid


def tiny_lasot(root: Path) -> Path:
    """Two classes; airplane-1 has frame 2 fully occluded and frame 4 out of view."""
    lasot = root / "LaSOT"
    seq = lasot / "airplane" / "airplane-1"
    write_frames(seq / "img", numbered(4, 8))
    (seq / "groundtruth.txt").write_text("10,11,5,6\n11,11,5,6\n12,11,5,6\n13,11,5,6\n")
    (seq / "full_occlusion.txt").write_text("0,1,0,0")
    (seq / "out_of_view.txt").write_text("0,0,0,1")
    bird = lasot / "bird" / "bird-2"
    write_frames(bird / "img", numbered(2, 8))
    (bird / "groundtruth.txt").write_text("1,1,3,3\n2,2,3,3\n")
    return lasot


def tiny_otb(root: Path, source: str | None = None) -> Path:
    """Basketball (tab-separated, mixed-case png names) and Jogging (two targets, spaces)."""
    otb = root / "OTB"
    basket = otb / "Basketball"
    write_frames(basket / "img", ["2.png", "10.PNG", "1.png"])
    (basket / "groundtruth_rect.txt").write_text("1\t2\t3\t4\n5\t6\t7\t8\n9\t10\t11\t12\n")
    jog = otb / "Jogging"
    write_frames(jog / "img", numbered(3, 4))
    (jog / "groundtruth_rect.1.txt").write_text("1 1 4 4\n0 0 0 0\n")  # short, one degenerate
    (jog / "groundtruth_rect.2.txt").write_text("9 9 4 4\n9 9 4 4\n9 9 4 4\n")
    if source is not None:
        (otb / "source.txt").write_text(source + "\n")
    return otb


def write_cut_video(
    path: Path, shot_lengths: list[int], size: tuple[int, int] = (128, 96), fourcc: str = "mp4v"
) -> list[int]:
    """A video (mp4v; 'PIM1' for MPEG-1 in .mpg) of shots of slowly drifting smooth texture,
    each shot a new brightness.

    Returns the frame indices where each shot after the first starts.
    """
    rng = np.random.default_rng(7)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, size)
    assert writer.isOpened()
    levels = [60, 190, 110, 230, 30]
    for shot, length in enumerate(shot_lengths):
        noise = rng.uniform(-1, 1, (size[1], size[0], 3)).astype(np.float32)
        texture = cv2.GaussianBlur(noise, (0, 0), 6) * 300 + levels[shot % len(levels)]
        for step in range(length):
            frame = np.roll(texture, step, axis=1)  # 1 px per frame: motion, not a cut
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    return [int(i) for i in np.cumsum(shot_lengths)[:-1]]
