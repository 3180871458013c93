"""Pair shards: samples round-trip through a tar and a WebDataset pipeline unchanged."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import webdataset as wds

from shards.pairs import (
    X_OUT,
    X_SIDE,
    Z_OUT,
    Z_SIDE,
    PairRecord,
    box_in_crop,
    decode_pair,
    pair_sample,
    read_pairs,
    read_records,
    summarize,
    write_pair_shard,
)
from shards.reader import CorruptSample


def record(seed_index: int = 0, target: int = 9, gt: float | None = 1.25) -> PairRecord:
    return PairRecord(
        clip="otb_seq00_clip0001",
        seed_index=seed_index,
        seed_frame=1,
        target_frame=target,
        frames=(33, 32 + target),
        gap=target - 1,
        seed_box=(10.5, 20.25, 30.0, 40.0),
        box=(14.0, 22.0, 31.0, 39.5),
        z_box=(95.0, 85.0, 65.0, 85.0),
        x_box=(160.0, 150.0, 64.0, 82.0),
        confidence=0.91234567,
        cycle_error=1.5,
        gt_error_px=gt,
    )


def crops(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # smooth content (bilinear upscaling of a few random pixels): JPEG keeps it closely
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    z = cv2.resize(small, (Z_OUT, Z_OUT), interpolation=cv2.INTER_LINEAR)
    x = cv2.resize(small[::-1], (X_OUT, X_OUT), interpolation=cv2.INTER_LINEAR)
    return z, x


def test_pair_samples_round_trip_through_a_shard(tmp_path):
    records = [record(0, 3), record(0, 9, gt=None), record(1, 9)]
    samples = [pair_sample(r, *crops(i)) for i, r in enumerate(records)]
    path = tmp_path / "pairs-000000.tar"
    assert write_pair_shard(path, samples) == 3
    assert not list(tmp_path.glob("*.part"))
    pairs = list(read_pairs(path))
    assert [p.key for p in pairs] == [
        "otb_seq00_clip0001_s0001_t0003_0",
        "otb_seq00_clip0001_s0001_t0009_0",
        "otb_seq00_clip0001_s0001_t0009_1",
    ]
    assert all("." not in p.key for p in pairs)
    for i, pair in enumerate(pairs):
        assert pair.z.shape == (Z_OUT, Z_OUT, 3) and pair.x.shape == (X_OUT, X_OUT, 3)
        z, x = crops(i)
        assert np.abs(pair.z.astype(int) - z).mean() < 2.0
        assert np.abs(pair.x.astype(int) - x).mean() < 2.0
        other, _ = crops(i + 1)
        assert np.abs(pair.z.astype(int) - other).mean() > 20.0
    # floats are stored to a thousandth of a pixel; everything else exactly
    assert pairs[0].record == dataclasses.replace(records[0], confidence=0.912)
    assert pairs[1].record.gt_error_px is None
    assert [r.gap for r in read_records(path)] == [2, 8, 8]


def test_the_json_holds_the_documented_fields():
    sample = pair_sample(record(), *crops(0))
    assert sorted(sample) == ["__key__", "json", "x.jpg", "z.jpg"]
    data = PairRecord.from_json(sample["json"])
    assert data.frames == (33, 41) and data.clip == "otb_seq00_clip0001"
    raw = json.loads(sample["json"])
    expected = {
        "clip",
        "seed_index",
        "seed_frame",
        "target_frame",
        "frames",
        "gap",
        "seed_box",
        "box",
        "z_box",
        "x_box",
        "confidence",
        "cycle_error",
        "gt_error_px",
    }
    assert set(raw) == expected
    assert "gt_error_px" not in json.loads(pair_sample(record(gt=None), *crops(0))["json"])


def test_shards_are_deterministic_and_readable_by_webdataset(tmp_path):
    samples = [pair_sample(record(i), *crops(i)) for i in range(2)]
    write_pair_shard(tmp_path / "a.tar", samples)
    write_pair_shard(tmp_path / "b.tar", samples)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    stream = wds.DataPipeline(
        wds.SimpleShardList([str(tmp_path / "a.tar")]), wds.tarfile_to_samples()
    )
    pairs = [decode_pair(s) for s in stream]
    assert [p.record.seed_index for p in pairs] == [0, 1]


def test_box_in_crop_matches_the_crop_geometry():
    # a box centred on the crop centre lands in the middle; sizes scale by out / side
    z = box_in_crop((90.0, 80.0, 20.0, 40.0), (100.0, 100.0), side=60.0 * Z_SIDE, out=Z_OUT)
    scale = Z_OUT / (60.0 * Z_SIDE)
    assert z == pytest.approx(
        (Z_OUT / 2 - 10 * scale, Z_OUT / 2 - 20 * scale, 20 * scale, 40 * scale)
    )
    x = box_in_crop((0.0, 0.0, 10.0, 10.0), (5.0, 5.0), side=100.0 * X_SIDE, out=X_OUT)
    assert x[0] + x[2] / 2 == pytest.approx(X_OUT / 2)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError):
        pair_sample(dataclasses.replace(record(), clip="a.b"), *crops(0))
    z, x = crops(0)
    with pytest.raises(ValueError):
        pair_sample(record(), x, z)  # sizes swapped
    sample = pair_sample(record(), z, x)
    with pytest.raises(CorruptSample):
        decode_pair({**sample, "x.jpg": b"not a jpeg"})
    with pytest.raises(CorruptSample):
        decode_pair({k: v for k, v in sample.items() if k != "json"})


def test_summary_counts_gaps_and_measures_quality_only_with_ground_truth():
    on = [
        dataclasses.replace(record(0, t, gt=e), cycle_error=c)
        for t, e, c in [(3, 1.0, 1.0), (5, 6.0, 2.0), (9, 12.0, 3.0)]
    ]
    off = [record(1, 9, gt=None)]
    summary = summarize(on + off, clips=4)
    assert summary["pairs"] == 4 and summary["clips"] == 4 and summary["clips_with_pairs"] == 1
    assert summary["pairs_per_gap"] == {"2": 1, "4": 1, "8": 2}
    assert summary["quality"]["pairs_on_target"] == 3
    assert summary["quality"]["within_8px"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["quality"]["gt_error_px"]["p50"] == 6.0
    assert summary["cycle_error_px"]["p50"] == 1.75
    assert "quality" not in summarize(off, clips=1)
