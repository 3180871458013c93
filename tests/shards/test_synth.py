"""The synthetic video generator: determinism, ground truth, difficulty, OTB output."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pul.boxes import iou
from shards.errors import ShardError
from shards.synth import SynthConfig, generate, photos, render_sequence, render_video, sequence_name
from shards.synth.render import render_frame
from shards.synth.scene import build_scene

SMALL = SynthConfig(videos=3, frames=6, width=160, height=120)
CLEAN = SynthConfig(
    frames=30,
    distractors_min=0,
    distractors_max=0,
    occlusion_prob=0.0,
    illumination=False,
    blur=False,
)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def box_edges(box: np.ndarray, width: int, height: int) -> np.ndarray:
    x, y, w, h = box
    return np.clip([x, y, x + w, y + h], 0, [width, height, width, height])


def pixel_extent(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def test_same_seed_gives_identical_bytes(tmp_path):
    generate(SMALL, tmp_path / "a", progress=False)
    generate(SMALL, tmp_path / "b", progress=False)
    first = tree_bytes(tmp_path / "a")
    assert len(first) == 2 + 3 * (6 + 1)
    assert first == tree_bytes(tmp_path / "b")


def test_different_seed_or_index_gives_different_videos():
    frames, boxes = render_video(SMALL, 0)
    other_frames, other_boxes = render_video(dataclasses.replace(SMALL, seed=1), 0)
    next_frames, next_boxes = render_video(SMALL, 1)
    for f, b in ((other_frames, other_boxes), (next_frames, next_boxes)):
        assert np.abs(f[0].astype(int) - frames[0]).mean() > 10
        assert np.abs(b - boxes).max() > 5


def test_boxes_match_the_rendered_target():
    """With nothing but the target over the background, the pixels it changes lie inside
    its box (up to the soft edge) and it changes the inside a lot."""
    width, height = CLEAN.size
    for index in range(3):
        scene = build_scene(CLEAN, index)
        empty = dataclasses.replace(scene, layers=())
        for t in range(0, CLEAN.frames, 7):
            frame, _ = render_frame(scene, t)
            background, _ = render_frame(empty, t)
            change = np.abs(frame.astype(int) - background).max(axis=2)
            x0, y0, x1, y1 = box_edges(scene.target.boxes[t], width, height)
            outside = change.copy()
            outside[max(int(y0) - 5, 0) : int(y1) + 5, max(int(x0) - 5, 0) : int(x1) + 5] = 0
            assert outside.max() == 0
            inside = change[int(y0) + 3 : int(y1) - 3, int(x0) + 3 : int(x1) - 3]
            assert inside.mean() > 15
            assert np.abs(pixel_extent(change > 0) - [x0, y0, x1, y1]).max() < 4.5


def test_boxes_are_the_shape_extent_to_a_pixel():
    """A white copy of the target's shape on black: alpha >= 0.5 spans the box within 1 px."""
    width, height = CLEAN.size
    for index in range(4):
        scene = build_scene(CLEAN, index)
        target = scene.target
        white = tuple(
            np.repeat(level[..., 3:], 4, axis=2) * np.float32([255, 255, 255, 1])
            for level in target.sprite.levels
        )
        shape = dataclasses.replace(target.sprite, levels=white)
        scene = dataclasses.replace(
            scene,
            world=np.zeros_like(scene.world),
            layers=(dataclasses.replace(target, sprite=shape),),
        )
        for t in range(0, CLEAN.frames, 5):
            frame, view = render_frame(scene, t)
            extent = pixel_extent(frame[..., 0] >= 128)
            assert np.abs(extent - box_edges(target.boxes[t], width, height)).max() <= 1.0
            assert view.occlusion < 1e-6


def test_render_video_boxes_are_the_scene_target():
    frames, boxes = render_video(CLEAN, 2)
    assert len(frames) == CLEAN.frames == len(boxes)
    assert frames[0].shape == (240, 320, 3) and frames[0].dtype == np.uint8
    np.testing.assert_array_equal(boxes, build_scene(CLEAN, 2).target.boxes)


def test_photo_splits_are_disjoint_and_used():
    train, bench = (set(photos.SPLIT_PHOTOS[s]) for s in ("train", "bench"))
    assert not train & bench
    assert {"motorcycle_left.png", "motorcycle_right.png"} <= train  # one scene, one split
    assert all(image.ndim == 3 for image in photos.split_photos("bench"))
    cfg = SynthConfig(split="bench", frames=4)
    for index in range(8):
        info = build_scene(cfg, index).info
        assert info["background"] in bench
        kind, _, name = info["target_texture"].partition(":")
        assert kind == "pattern" or name in bench


def test_missing_scikit_image_is_a_shard_error(monkeypatch):
    monkeypatch.setattr(photos.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ShardError, match="install scikit-image"):
        photos.data_folder()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"frames": 1}, "frames must be >= 2"),
        ({"videos": 0}, "videos must be >= 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"split": "val"}, "split must be one of"),
        ({"width": 64, "height": 48}, "too small for object_min"),
        ({"distractors_min": 3, "distractors_max": 1}, "distractors_min <= distractors_max"),
        ({"occlusion_prob": 1.5}, "occlusion_prob"),
        ({"object_min": 0.4, "object_max": 0.3}, "object_min <= object_max"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"max_speed": -1.0}, "max_speed"),
    ],
)
def test_config_validation(change, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**change)


def test_target_moves_and_changes_scale():
    cfg = SynthConfig(frames=60)
    scaled = 0
    for index in range(10):
        boxes = build_scene(cfg, index).target.boxes
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        assert np.linalg.norm(np.diff(centres, axis=0), axis=1).mean() > 1.5
        assert np.ptp(centres[:, 0]) > 20 or np.ptp(centres[:, 1]) > 20
        areas = boxes[:, 2] * boxes[:, 3]
        scaled += areas.max() / areas.min() > 1.2
        inside = (centres >= 0).all(axis=1) & (centres <= cfg.size).all(axis=1)
        assert inside.all()  # mostly inside the frame: at least the centre always is
    assert scaled >= 8


def test_a_static_box_scores_badly_on_the_bench():
    """The benchmark must punish a tracker that never moves (success-plot AUC)."""
    cfg = SynthConfig(split="bench", frames=60)
    aucs = []
    for index in range(12):
        boxes = build_scene(cfg, index).target.boxes
        overlap = iou(np.repeat(boxes[:1], len(boxes) - 1, axis=0), boxes[1:])
        aucs.append(np.mean([(overlap > th).mean() for th in np.linspace(0, 1, 21)]))
    assert np.mean(aucs) < 0.3


def test_occlusion_happens_in_some_bench_videos():
    cfg = SynthConfig(split="bench", frames=40, width=160, height=120)
    occluded, full = 0, 0
    for index in range(8):
        _, _, info = render_sequence(cfg, index)
        occluded += bool(info["occluded_frames"])
        full += max(info["occlusion"]) > 0.9
        if info["occluder_frame"] is not None:
            assert info["occluder_frame"] in info["occluded_frames"]
    assert 2 <= occluded <= 7
    assert full >= 1


def test_output_layout(tmp_path):
    paths = generate(SMALL, tmp_path, progress=False)
    assert [p.name for p in paths] == ["synth-train-0000", "synth-train-0001", "synth-train-0002"]
    assert (tmp_path / "source.txt").read_text().split() == ["synth"]
    manifest = json.loads((tmp_path / "synth.json").read_text())
    assert manifest["config"] == dataclasses.asdict(SMALL)
    assert sorted(manifest["sequences"]) == [p.name for p in paths]
    frames, boxes = render_video(SMALL, 1)
    images = sorted((paths[1] / "img").iterdir())
    assert [p.name for p in images] == [f"{i:04d}.jpg" for i in range(1, 7)]
    decoded = cv2.imread(str(images[0]))
    assert decoded.shape == (120, 160, 3)
    assert np.abs(decoded.astype(int) - frames[0]).mean() < 4  # JPEG of the same frame
    lines = (paths[1] / "groundtruth_rect.txt").read_text().splitlines()
    written = np.array([[float(v) for v in line.split(",")] for line in lines])
    np.testing.assert_allclose(written, boxes, atol=0.006)
    assert not list(tmp_path.glob(".*partial"))
    assert "." not in sequence_name(dataclasses.replace(SMALL, split="bench"), 7)


def test_bench_source_name(tmp_path):
    generate(
        dataclasses.replace(SMALL, split="bench", videos=1, frames=2), tmp_path, progress=False
    )
    assert (tmp_path / "source.txt").read_text().strip() == "synthbench"
    assert (tmp_path / "synth-bench-0000" / "img" / "0002.jpg").is_file()


def test_resume_regenerates_only_what_is_missing(tmp_path):
    generate(SMALL, tmp_path, progress=False)
    before = tree_bytes(tmp_path)
    kept = (tmp_path / "synth-train-0000" / "img" / "0001.jpg").stat().st_mtime_ns
    shutil.rmtree(tmp_path / "synth-train-0001")
    # a crash after renaming a sequence but before listing it: the folder is not trusted
    manifest = json.loads((tmp_path / "synth.json").read_text())
    del manifest["sequences"]["synth-train-0002"]
    (tmp_path / "synth.json").write_text(json.dumps(manifest))
    (tmp_path / "synth-train-0002" / "img" / "0003.jpg").write_bytes(b"half")
    (tmp_path / ".synth-train-0001.partial" / "img").mkdir(parents=True)
    generate(SMALL, tmp_path, progress=False)
    assert tree_bytes(tmp_path) == before
    assert (tmp_path / "synth-train-0000" / "img" / "0001.jpg").stat().st_mtime_ns == kept


def test_refuses_a_folder_made_with_another_config(tmp_path):
    generate(dataclasses.replace(SMALL, videos=1), tmp_path, progress=False)
    with pytest.raises(ShardError, match="different config"):
        generate(dataclasses.replace(SMALL, videos=1, seed=1), tmp_path, progress=False)
