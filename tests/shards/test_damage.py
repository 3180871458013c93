"""Damaged samples: caught and counted in one place wherever they are decoded, limited by a
share, and pair crops checked by CRC-32 like clip frames (in readers and in `verify`)."""

from __future__ import annotations

import json
import zlib

import cv2
import numpy as np
import pytest

from jobs.pack import pack
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.pairs import decode_pair, pair_sample, raw_samples, read_pairs
from shards.reader import SkipCounter, clip_stream
from shards.tario import write_members
from shards.verify import verify_set
from tests.shards.clip_fixtures import make_otb_set
from tests.shards.damage_fixtures import (
    flip_byte,
    make_pair_set,
    member_bytes,
    pair_record,
    textured_crops,
)

DAMAGED_CLIP = "otb_seq01_clip0001"
DAMAGED_PAIR = "synth_v01_clip0000_s0000_t0002_3"


@pytest.fixture(scope="module")
def damaged_clips(tmp_path_factory):
    """4 videos x 3 clips of 8 frames over several shards; frame 3 of one clip damaged."""
    root = tmp_path_factory.mktemp("damaged")
    src = make_otb_set(root / "otb", videos=4, frames=24)
    cfg = PackConfig(sources=[str(src)], workers=1, clip_len=8, shard_mb=0.03)
    pack(cfg, root / "out", command=["test"], progress=False)
    out = root / "out"
    shard = next(
        out / s.name
        for s in read_manifest(out).shards
        if f"{DAMAGED_CLIP}.json".encode() in (out / s.name).read_bytes()
    )
    flip_byte(shard, f"{DAMAGED_CLIP}.0003.jpg")
    return out, shard.name


def test_a_frame_decoded_after_the_stream_is_counted_like_one_decoded_in_it(damaged_clips):
    out, shard = damaged_clips
    skips = SkipCounter()
    clips = list(clip_stream(out, skips=skips))  # frames stay encoded: nothing skipped yet
    assert len(clips) == 12 and skips.total == 0 and skips.read == 12
    # a consumer decoding later (stage 1's pool) goes through the same counter
    decoded = [skips.attempt(c, lambda c: c.frame(3)) for c in clips]
    assert sum(d is None for d in decoded) == 1 and skips.total == 1
    assert {k.rsplit("/", 1)[-1]: v for k, v in skips.damaged.items()} == {shard: {DAMAGED_CLIP}}
    assert skips.take_unreported() == 1 and skips.take_unreported() == 0


def test_past_the_damaged_share_the_stream_stops_in_one_line_naming_the_shard(damaged_clips):
    out, shard = damaged_clips
    every_frame = lambda c: [c.frame(i) for i in range(len(c))]  # noqa: E731
    strict = SkipCounter(max_share=0.05, floor=0)
    with pytest.raises(ShardError) as err:
        list(clip_stream(out, skips=strict, transform=every_frame))
    message = str(err.value)
    assert "\n" not in message and shard in message and f"pul shards verify {out}" in message
    assert message.startswith(f"1 of {strict.read} samples read are damaged")
    assert strict.read <= 12
    # the same damage within the floor is skipped and counted, the rest is read
    tolerant = SkipCounter(max_share=0.05, floor=1)
    assert len(list(clip_stream(out, skips=tolerant, transform=every_frame))) == 11
    assert tolerant.total == 1 and tolerant.read == 12


def test_a_resampled_stream_limits_distinct_damaged_samples_not_repeats(damaged_clips):
    out, _ = damaged_clips
    skips = SkipCounter(max_share=0.01, floor=1)
    stream = clip_stream(out, resampled=True, epoch_samples=90, seed=1, skips=skips)
    used = [skips.attempt(c, lambda c: c.frame(3)) for c in stream]
    assert skips.read == 90 and skips.total >= 2  # the damaged clip came round again...
    assert skips.damaged_samples == 1  # ...but it is one damaged clip, within the floor
    assert sum(u is None for u in used) == skips.total


def test_pair_shards_carry_a_crc_of_each_crop(tmp_path):
    folder = make_pair_set(tmp_path / "pairs")
    for sample in raw_samples(folder / "pairs-000000.tar"):
        meta = json.loads(sample["json"])
        assert meta["crc32"] == {
            "z.jpg": zlib.crc32(sample["z.jpg"]),
            "x.jpg": zlib.crc32(sample["x.jpg"]),
        }
    assert len(list(read_pairs(folder / "pairs-000001.tar"))) == 6


def test_a_flipped_crop_byte_is_skipped_though_the_crop_still_decodes(tmp_path):
    folder = make_pair_set(tmp_path / "pairs")
    shard = folder / "pairs-000001.tar"
    flip_byte(shard, f"{DAMAGED_PAIR}.x.jpg")
    broken = member_bytes(shard, f"{DAMAGED_PAIR}.x.jpg")
    # without a checksum this would be trained on: it decodes, to a broken image
    assert cv2.imdecode(np.frombuffer(broken, np.uint8), cv2.IMREAD_COLOR) is not None
    skips = SkipCounter()
    pairs = list(clip_stream(folder, decode=decode_pair, skips=skips))
    assert len(pairs) == 11 and DAMAGED_PAIR not in {p.key for p in pairs}
    assert skips.total == 1 and list(skips.damaged.values()) == [{DAMAGED_PAIR}]
    assert list(skips.damaged)[0].endswith("pairs-000001.tar")


def test_pairs_written_without_checksums_are_still_read(tmp_path):
    """Sets mined before the checksums existed: the crops are read unchecked."""
    sample = pair_sample(pair_record(0, 0), *textured_crops(0))
    assert "crc32" not in json.loads(sample["json"])
    path = tmp_path / "old.tar"
    write_members(
        path, [(f"{sample['__key__']}.{n}", sample[n]) for n in ("z.jpg", "x.jpg", "json")]
    )
    pairs = list(read_pairs(path))
    assert len(pairs) == 1 and pairs[0].record.gap == 2


def test_verify_names_the_crop_that_fails_its_checksum(tmp_path):
    folder = make_pair_set(tmp_path / "pairs")
    flip_byte(folder / "pairs-000001.tar", f"{DAMAGED_PAIR}.z.jpg")
    reports = {r.name: r for r in verify_set(folder)}
    assert reports["pairs-000000.tar"].ok and reports["pairs-000000.tar"].samples == 6
    assert f"{DAMAGED_PAIR}: z.jpg fails its checksum" in reports["pairs-000001.tar"].problems
    assert reports["pairs-000001.tar"].samples == 6
