"""What a pack is keyed by (the content of its inputs) and how it treats its folder: a failed
pack leaves nothing that blocks the next one, and two packs into one folder never collide."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.pack import pack
from shards import content_hash
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pack import plan_for
from shards.pack_config import PackConfig
from shards.readers import read_sources
from shards.staged_set import STAGING
from tests.shards.clip_fixtures import make_otb_set, write_video


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PUL_CACHE_DIR", str(tmp_path / "hash-cache"))


def _cfg(src: Path, **fields) -> PackConfig:
    return PackConfig(sources=[str(src)], workers=1, clip_len=8, min_clip_len=4, **fields)


def _pack(src: Path, out: Path, **fields):
    return pack(_cfg(src, **fields), out, command=["test"], progress=False)


def _plan_hash(src: Path, **fields) -> str:
    cfg = _cfg(src, **fields)
    return plan_for(
        Path("unused"), read_sources([str(src)], cfg.format, cfg.split_cuts), cfg
    ).plan_hash


def _same_size_edit(path: Path) -> None:
    """Change one byte, keep the size and the modification time (as `cp -p` would)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size


def test_an_edited_frame_of_the_same_size_is_a_different_pack(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=2, frames=12)
    out = tmp_path / "out"
    _pack(src, out)
    _same_size_edit(src / "seq01" / "img" / "0005.jpg")
    # before content keys, the pack was keyed by the frame count and reused as done
    with pytest.raises(ShardError, match="different shard set"):
        _pack(src, out)
    assert _pack(src, tmp_path / "out2").extra["plan_hash"] != read_manifest(out).extra["plan_hash"]


def test_an_edited_label_is_a_different_pack(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=12)
    before = _plan_hash(src)
    labels = src / "seq00" / "groundtruth_rect.txt"
    labels.write_text(labels.read_text().replace("4,4,12,12", "5,4,12,12", 1))
    assert _plan_hash(src) != before


def test_an_edited_video_file_of_the_same_size_is_a_different_pack(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=12)
    before = _plan_hash(video)
    _same_size_edit(video)
    assert _plan_hash(video) != before


def test_moving_the_inputs_keeps_the_key(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=12)
    before = _plan_hash(src)
    src.rename(tmp_path / "elsewhere")
    assert _plan_hash(tmp_path / "elsewhere") == before


def test_an_unchanged_file_is_not_read_again(tmp_path, monkeypatch):
    video = write_video(tmp_path / "v.mp4", frames=12)
    first = content_hash.file_digest(video)
    reads = []
    real = content_hash._sha256
    monkeypatch.setattr(content_hash, "_sha256", lambda p: reads.append(p) or real(p))
    assert content_hash.file_digest(video) == first and reads == []  # the fast path
    _same_size_edit(video)  # same size and mtime, but a new ctime: hashed again
    assert content_hash.file_digest(video) != first and len(reads) == 1


def test_a_damaged_cache_only_costs_a_rehash(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=12)
    first = content_hash.file_digest(video)
    content_hash.cache_path().write_text("{not json")
    assert content_hash.file_digest(video) == first


def test_a_pack_that_cannot_succeed_leaves_no_staging(tmp_path, capsys):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=6)
    out = tmp_path / "out"
    code = main(["shards", "pack", str(src), "--out", str(out), "workers=1", "min_clip_len=8"])
    assert code == 2 and "shorter than min_clip_len=8" in capsys.readouterr().err
    assert not (out / STAGING).exists()
    # the corrected command now packs into the same folder (it was refused before)
    code = main(["shards", "pack", str(src), "--out", str(out), "workers=1", "min_clip_len=4"])
    assert code == 0 and read_manifest(out).samples == 1


def test_a_second_pack_into_a_folder_being_written_is_told_so(tmp_path, capsys):
    src = make_otb_set(tmp_path / "otb", videos=1, frames=12)
    out = tmp_path / "out"
    cfg = _cfg(src)
    busy = plan_for(out, read_sources([str(src)], cfg.format, cfg.split_cuts), cfg).shard_set
    with busy.writing():  # what a first `pul shards pack` holds while it works
        code = main(["shards", "pack", str(src), "--out", str(out), "workers=1", "clip_len=8"])
        err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "another pack is writing" in err and str(out) in err
    assert not (out / "manifest.json").exists()
    # once the first one is done, the same command runs
    assert main(["shards", "pack", str(src), "--out", str(out), "workers=1", "clip_len=8"]) == 0
