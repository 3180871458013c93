"""The streaming reader: lazy decoding, DDP splitting, fixed epochs, and skipping damage."""

from __future__ import annotations

import pytest

import shards.reader as reader
from jobs.pack import pack
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.reader import SkipCounter, clip_stream
from tests.shards.clip_fixtures import make_otb_set


@pytest.fixture(scope="module")
def clip_set(tmp_path_factory):
    """4 videos x 3 clips of 8 frames, spread over several shards."""
    root = tmp_path_factory.mktemp("clips")
    src = make_otb_set(root / "otb", videos=4, frames=24)
    cfg = PackConfig(sources=[str(src)], workers=1, clip_len=8, shard_mb=0.03)
    pack(cfg, root / "out", command=["test"], progress=False)
    return root / "out"


def test_only_the_frames_used_are_decoded(clip_set, monkeypatch):
    calls = []
    real = reader.cv2.imdecode
    monkeypatch.setattr(reader.cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    pairs = list(clip_stream(clip_set, transform=lambda clip: (clip.frame(0), clip.frame(5))))
    assert len(pairs) == 12 and len(calls) == 24  # 2 of 8 frames per clip


def test_one_exact_pass_without_resampling(clip_set):
    keys = [clip.key for clip in clip_stream(clip_set)]
    assert len(keys) == len(set(keys)) == read_manifest(clip_set).samples == 12


def test_ranks_get_disjoint_shards_that_cover_the_set(clip_set, monkeypatch):
    assert len(read_manifest(clip_set).shards) >= 2
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.append({clip.key for clip in clip_stream(clip_set)})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 12


def test_resampled_epochs_have_a_fixed_length_and_differ_by_rank(clip_set, monkeypatch):
    streams = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        stream = clip_stream(clip_set, resampled=True, epoch_samples=30, shuffle=8, seed=3)
        streams.append([clip.key for clip in stream])
    assert [len(s) for s in streams] == [30, 30]
    assert streams[0] != streams[1]
    # seeded: the same rank draws the same stream again
    monkeypatch.setenv("RANK", "0")
    again = [
        c.key for c in clip_stream(clip_set, resampled=True, epoch_samples=30, shuffle=8, seed=3)
    ]
    assert again == streams[0]


def _flip_byte_in_a_frame(shard, key: str) -> None:
    """Flip one byte inside the JPEG payload of `key`'s frame 0003."""
    data = bytearray(shard.read_bytes())
    start = data.index(f"{key}.0003.jpg".encode()) + 512  # payload follows the 512-byte header
    data[start + 300] ^= 0xFF
    shard.write_bytes(bytes(data))


def test_a_damaged_frame_is_skipped_and_counted(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=2, frames=16)
    out = tmp_path / "out"
    pack(PackConfig(sources=[str(src)], workers=1, clip_len=8), out, command=["t"], progress=False)
    shard = out / read_manifest(out).shards[0].name
    _flip_byte_in_a_frame(shard, "otb_seq01_clip0000")
    skips = SkipCounter()
    used = list(
        clip_stream(out, skips=skips, transform=lambda c: [c.frame(i) for i in range(len(c))])
    )
    assert len(used) == 3
    assert skips.total == 1 and skips.counts["corrupt sample"] == 1


def test_a_truncated_shard_is_skipped_not_fatal(tmp_path):
    src = make_otb_set(tmp_path / "otb", videos=4, frames=16)
    out = tmp_path / "out"
    cfg = PackConfig(sources=[str(src)], workers=1, clip_len=8, shard_mb=0.02)
    pack(cfg, out, command=["t"], progress=False)
    shards = read_manifest(out).shards
    assert len(shards) >= 2
    first = out / shards[0].name
    first.write_bytes(first.read_bytes()[: shards[0].bytes // 2 + 100])
    stream = clip_stream(out)
    keys = [clip.key for clip in stream]
    assert stream.skips.total >= 1
    assert len(keys) >= sum(s.samples for s in shards[1:])  # the other shards still read
    assert len(keys) < 8


def test_a_stream_of_nothing_but_damage_stops_with_an_error(clip_set, tmp_path):
    missing = [tmp_path / "gone-0.tar", tmp_path / "gone-1.tar"]
    stream = clip_stream(missing, resampled=True, skips=SkipCounter(max_in_a_row=50))
    with pytest.raises(ShardError, match="50 damaged samples in a row"):
        next(iter(stream))
