"""Packing clip shards: contents, sizes, determinism, and resuming after a kill."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jobs.pack import pack
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.reader import clip_stream
from tests.helpers import pul_command, pul_killed_when
from tests.shards.clip_fixtures import make_otb_set


def _pack(src: Path, out: Path, **fields) -> object:
    cfg = PackConfig(sources=[str(src)], workers=1, **fields)
    return pack(cfg, out, command=["test"], progress=False)


def test_clips_hold_the_right_frames_and_boxes(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=3, frames=20)
    manifest = _pack(src, tmp_path / "out", clip_len=8, min_clip_len=4)
    # 20 frames -> clips of 8, 8 and a last one of 4 (kept: >= min_clip_len), per video.
    assert manifest.samples == 9 and manifest.extra["frames"] == 60
    clips = list(clip_stream(tmp_path / "out"))
    assert [c.key for c in clips[:3]] == [
        "otb_seq00_clip0000",
        "otb_seq00_clip0001",
        "otb_seq00_clip0002",
    ]
    last = clips[2]
    assert last.meta["frames"] == [16, 17, 18, 19] and len(last) == 4
    # frame 17 of seq00: the square sits at x = 4 + 17, y = 4 + 34 % 28
    assert last.gt(1) == [21.0, 10.0, 12.0, 12.0]
    image = last.frame(1)
    assert image.shape == (48, 64, 3)
    assert image[10:22, 21:33].mean() > 240  # the white square is where the box says


def test_short_tail_is_dropped_below_min_clip_len(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=20)
    manifest = _pack(src, tmp_path / "out", clip_len=8, min_clip_len=5)
    assert manifest.samples == 2 and manifest.extra["frames"] == 16


def test_max_side_downscales_frames_and_boxes(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=8, size=(128, 96))
    _pack(src, tmp_path / "out", clip_len=8, max_side=64)
    clip = next(iter(clip_stream(tmp_path / "out")))
    assert clip.frame(0).shape == (48, 64, 3)
    assert clip.meta["orig_size"] == [128, 96] and clip.meta["size"] == [64, 48]
    assert clip.gt(0) == [2.0, 2.0, 6.0, 6.0]  # (4, 4, 12, 12) halved


def test_frame_step_thins_frames(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=20)
    _pack(src, tmp_path / "out", clip_len=5, min_clip_len=5, frame_step=2)
    clips = list(clip_stream(tmp_path / "out"))
    assert [c.meta["frames"] for c in clips] == [[0, 2, 4, 6, 8], [10, 12, 14, 16, 18]]
    assert clips[0].meta["fps"] == 15.0


def test_shards_close_at_the_target_size(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=4, frames=16)
    manifest = _pack(src, tmp_path / "out", clip_len=4, shard_mb=0.03)
    assert len(manifest.shards) >= 3
    assert all(s.bytes >= 30_000 for s in manifest.shards[:-1])
    assert sum(s.samples for s in manifest.shards) == 16
    on_disk = sorted(p.name for p in (tmp_path / "out").glob("*.tar"))
    assert on_disk == [s.name for s in manifest.shards]
    assert not (tmp_path / "out" / ".staging").exists()


def test_same_input_gives_the_same_bytes_and_rerun_is_a_no_op(tmp_path):
    src = make_otb_set(tmp_path / "otb")
    first = _pack(src, tmp_path / "a", clip_len=8)
    second = _pack(src, tmp_path / "b", clip_len=8)
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in second.shards]
    before = (tmp_path / "a" / "manifest.json").stat().st_mtime_ns
    again = _pack(src, tmp_path / "a", clip_len=8)
    assert again.lineage == first.lineage
    assert (tmp_path / "a" / "manifest.json").stat().st_mtime_ns == before


def test_resolved_config_is_saved_beside_the_shards(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1)
    _pack(src, tmp_path / "out", clip_len=6, min_clip_len=2)
    text = (tmp_path / "out" / "config.yaml").read_text()
    assert "clip_len: 6" in text and "min_clip_len: 2" in text
    assert read_manifest(tmp_path / "out").config["clip_len"] == 6


@pytest.mark.slow
def test_killed_pack_resumes_to_identical_bytes(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=12, frames=60, size=(320, 240))
    reference = _pack(src, tmp_path / "ref", clip_len=8, shard_mb=0.5)
    out = tmp_path / "out"
    argv = ["shards", "pack", str(src), "--out", str(out), "--workers", "1", "--no-progress"]
    argv += ["clip_len=8", "shard_mb=0.5"]
    pul_killed_when(argv, lambda: len(list((out / ".staging").glob("*.tar"))) >= 3, 60, poll=0.01)
    staged = len(list((out / ".staging").glob("*.tar")))
    assert 3 <= staged < 12, "the kill should land mid-pack"
    assert not (out / "manifest.json").exists()  # an interrupted pack never looks finished
    done = subprocess.run(pul_command(*argv), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = read_manifest(out)
    assert [(s.name, s.sha256) for s in resumed.shards] == [
        (s.name, s.sha256) for s in reference.shards
    ]
    assert "resuming: " in done.stderr and f"{staged} of 12 videos already staged" in done.stderr


@pytest.mark.ray
def test_parallel_pack_on_ray_matches_in_process(tmp_path, ray_local):
    src = make_otb_set(tmp_path / "otb", videos=4)
    serial = _pack(src, tmp_path / "serial", clip_len=8)
    cfg = PackConfig(sources=[str(src)], workers=2, clip_len=8)
    parallel = pack(cfg, tmp_path / "ray", command=["test"], progress=False)
    assert parallel.lineage == serial.lineage
    assert (
        json.loads((tmp_path / "ray" / "manifest.json").read_text())["totals"]["samples"] == 8
    )  # 2 full clips of 8 per 20-frame video
