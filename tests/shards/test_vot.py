"""The VOT layout reader on tiny fixtures: color/ and flat sequences, rectangles, polygons
and masks, detection, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from shards.errors import ShardError
from shards.readers.vot import is_vot_root, is_vot_sequence, read_regions, read_vot
from tests.shards.layout_fixtures import numbered, write_frames

# A rectangle given as a rotated polygon (a diamond) and its tight axis-aligned box.
DIAMOND = "5,0,10,5,5,10,0,5"
DIAMOND_BOX = (0.0, 0.0, 10.0, 10.0)


def tiny_vot(root: Path) -> Path:
    """'ball': VOT2016+ (color/, polygons, 3 frames); 'car': VOT2013 (flat, x,y,w,h, a
    .tag file, 2 of 3 frames labeled); list.txt names them in a non-sorted order."""
    ball = root / "ball"
    write_frames(ball / "color", numbered(3, 8))
    (ball / "groundtruth.txt").write_text(f"1,2,11,2,11,7,1,7\n{DIAMOND}\n1,1,1,1,1,1,1,1\n")
    car = root / "car"
    write_frames(car, numbered(3, 8))
    (car / "groundtruth.txt").write_text("3\t4\t5\t6\n7.5,8,9,10\n")
    (car / "occlusion.tag").write_text("0\n0\n1\n")
    (root / "list.txt").write_text("car\nball\n")
    return root


def by_name(refs):
    return {ref.name: ref for ref in refs}


def test_reads_both_layouts_in_list_order(tmp_path):
    refs = read_vot(tiny_vot(tmp_path))
    assert [r.name for r in refs] == ["car", "ball"]
    ball, car = by_name(refs)["ball"], by_name(refs)["car"]
    assert {r.source for r in refs} == {"vot"}
    assert ball.frames[0] == str(tmp_path / "ball" / "color" / "00000001.jpg")
    assert car.frames[-1] == str(tmp_path / "car" / "00000003.jpg")
    assert all(Path(f).is_absolute() for r in refs for f in r.frames)
    assert len(ball.frames) == 3 and len(car.frames) == 3


def test_polygons_become_their_tight_axis_aligned_box(tmp_path):
    ball = by_name(read_vot(tiny_vot(tmp_path)))["ball"]
    # corners (1,2) (11,2) (11,7) (1,7) -> x 1..11, y 2..7; a collapsed polygon -> None.
    assert ball.gt == ((1.0, 2.0, 10.0, 5.0), DIAMOND_BOX, None)


def test_rectangles_are_kept_and_missing_lines_padded(tmp_path):
    car = by_name(read_vot(tiny_vot(tmp_path)))["car"]
    assert car.gt == ((3.0, 4.0, 5.0, 6.0), (7.5, 8.0, 9.0, 10.0), None)


def test_mask_regions_keep_their_bounding_rectangle(tmp_path):
    file = tmp_path / "groundtruth.txt"
    file.write_text("m12,7,4,3,0,5,2,5\nm0,0,0,0\n")
    assert read_regions(file) == [(12.0, 7.0, 4.0, 3.0), None]


def test_nan_polygon_and_degenerate_rectangle_have_no_box(tmp_path):
    file = tmp_path / "groundtruth.txt"
    file.write_text(f"nan,nan,nan,nan\n{DIAMOND.replace('10', 'nan', 1)}\n1,2,0,5\n\n{DIAMOND}\n")
    assert read_regions(file) == [None, None, None, None, DIAMOND_BOX]


def test_single_sequence_folder(tmp_path):
    root = tiny_vot(tmp_path)
    refs = read_vot(root / "ball")
    assert [r.name for r in refs] == ["ball"] and len(refs[0].gt) == 3


def test_without_list_txt_every_sequence_folder_is_read(tmp_path):
    root = tiny_vot(tmp_path)
    (root / "list.txt").unlink()
    (root / "notes").mkdir()  # neither frames nor ground truth: skipped
    assert [r.name for r in read_vot(root)] == ["ball", "car"]


def test_detection_tells_vot_from_got10k_looking_folders(tmp_path):
    root = tiny_vot(tmp_path)
    assert is_vot_root(root)
    assert is_vot_sequence(root / "ball") and is_vot_sequence(root / "car")
    got = tmp_path / "got"  # flat frames with x,y,w,h and no VOT marker: GOT-10k's layout
    write_frames(got, numbered(2, 8))
    (got / "groundtruth.txt").write_text("1,2,3,4\n")
    assert not is_vot_sequence(got)
    (got / "groundtruth.txt").write_text(f"{DIAMOND}\n")
    assert is_vot_sequence(got)


def test_bad_line_names_file_and_line(tmp_path):
    file = tmp_path / "groundtruth.txt"
    file.write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(ShardError, match=r"line 2 of .*groundtruth\.txt"):
        read_regions(file)
    file.write_text("1,2,3,4\nx,2,3,4\n")
    with pytest.raises(ShardError, match="line 2"):
        read_regions(file)


def test_missing_listed_sequence_is_an_error(tmp_path):
    root = tiny_vot(tmp_path)
    (root / "list.txt").write_text("car\nball\nghost\n")
    with pytest.raises(ShardError, match="ghost"):
        read_vot(root)
