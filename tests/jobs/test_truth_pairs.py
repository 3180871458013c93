"""Pair sets cut from ground truth (jobs/truth_pairs.py): the crops and records mining
would store, around the true boxes, or around boxes moved by a known simulated error."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from bench.bench_data import pack_clips
from jobs.truth_pairs import write_truth_pairs
from pul.crops import box_center, context_size
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pairs import X_OUT, X_SIDE, Z_OUT, Z_SIDE, read_records
from shards.reader import clip_stream
from shards.synth import SynthConfig, generate
from tests.shards.clip_fixtures import make_otb_set

MAX_GAP = 4


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three small labeled synthetic videos packed into clip shards (no Ray)."""
    folder = tmp_path_factory.mktemp("labeled")
    synth = SynthConfig(videos=3, frames=16, width=160, height=120)
    generate(synth, folder / "synth", progress=False)
    return pack_clips(folder / "synth", folder / "clips")


@pytest.fixture(scope="module")
def truth(clips) -> dict[str, list]:
    """Clip key -> its ground-truth boxes, frame by frame."""
    clips_read = {clip.key: clip.meta["gt"] for clip in clip_stream(shards_of(clips))}
    assert len(clips_read) == 3
    return clips_read


def shards_of(folder: Path) -> list[str]:
    return [str(folder / shard.name) for shard in read_manifest(folder).shards]


def records_of(folder: Path) -> list:
    return [r for shard in sorted(folder.glob("pairs-*.tar")) for r in read_records(shard)]


def test_exact_pairs_sit_on_the_true_boxes_at_the_centre_of_their_crops(clips, truth, tmp_path):
    out = write_truth_pairs(clips, tmp_path / "exact", pairs=30, max_gap=MAX_GAP, noise=0.0)
    records = records_of(out)
    assert len(records) >= 15
    for r in records:
        assert r.gt_error_px == 0.0 and r.cycle_error == 0.0 and r.confidence == 1.0
        assert 1 <= r.gap == r.target_frame - r.seed_frame <= MAX_GAP
        assert r.seed_box == pytest.approx(truth[r.clip][r.seed_frame])
        assert r.box == pytest.approx(truth[r.clip][r.target_frame])
        assert box_center(r.x_box) == pytest.approx((X_OUT / 2, X_OUT / 2), abs=0.5)
        assert box_center(r.z_box) == pytest.approx((Z_OUT / 2, Z_OUT / 2), abs=0.5)
        # each crop at the density the format fixes: the exemplar square (context) of the
        # box spans Z_OUT / Z_SIDE px of z.jpg, and 127/255 of X_OUT / X_SIDE px of x.jpg
        assert context_size(*r.z_box[2:]) == pytest.approx(Z_OUT / Z_SIDE, rel=1e-4)
        assert context_size(*r.x_box[2:]) == pytest.approx(X_OUT / X_SIDE * 127 / 255, rel=1e-4)
    manifest = read_manifest(out)
    assert manifest.kind == "pairs"
    assert manifest.samples == len(records)
    per_gap = manifest.extra["pairs_per_gap"]
    assert sum(per_gap.values()) == len(records)
    assert {int(g) for g in per_gap} <= set(range(1, MAX_GAP + 1))
    assert manifest.extra["source_lineage"] == read_manifest(clips).lineage


def test_noisy_pairs_record_their_simulated_error_against_the_truth(clips, truth, tmp_path):
    noise = 0.1
    out = write_truth_pairs(clips, tmp_path / "noisy", pairs=60, max_gap=MAX_GAP, noise=noise)
    records = records_of(out)
    assert len(records) >= 30
    relative = []
    for r in records:
        true = truth[r.clip][r.target_frame]
        dx, dy = r.box[0] - true[0], r.box[1] - true[1]
        assert r.box[2:] == pytest.approx(true[2:])  # only the centre moves
        assert r.gt_error_px == pytest.approx(math.hypot(dx, dy), abs=1e-3)
        assert r.gt_error_px > 0 and r.cycle_error > 0
        # the search crop is cut around the moved box: it still sits at x.jpg's centre
        assert box_center(r.x_box) == pytest.approx((X_OUT / 2, X_OUT / 2), abs=0.5)
        relative.append(r.gt_error_px / (noise * math.sqrt(true[2] * true[3])))
    # |N(0, s^2 I_2)| / s is Rayleigh(1): median sqrt(2 ln 2) = 1.18
    assert 0.8 < statistics.median(relative) < 1.6
    quality = read_manifest(out).extra["quality"]["gt_error_px"]
    assert quality["p50"] > 0


def test_a_rerun_keeps_the_set_and_other_settings_are_refused(clips, tmp_path):
    out = tmp_path / "pairs"
    assert write_truth_pairs(clips, out, pairs=12, max_gap=MAX_GAP) == out
    files = sorted(p for p in out.iterdir())
    stamps = [p.stat().st_mtime_ns for p in files]
    assert write_truth_pairs(clips, out, pairs=12, max_gap=MAX_GAP) == out
    assert sorted(out.iterdir()) == files
    assert [p.stat().st_mtime_ns for p in files] == stamps
    for other in (dict(pairs=13), dict(pairs=12, noise=0.05), dict(pairs=12, seed=1)):
        with pytest.raises(ShardError, match=f"{out} holds another pair set"):
            write_truth_pairs(clips, out, max_gap=MAX_GAP, **other)
    assert [p.stat().st_mtime_ns for p in files] == stamps


def test_clips_without_ground_truth_are_refused(tmp_path):
    videos = make_otb_set(tmp_path / "otb", videos=2, frames=10)
    for truth_file in videos.glob("*/groundtruth_rect.txt"):
        truth_file.unlink()
    clips = pack_clips(videos, tmp_path / "clips")
    unlabeled = list(clip_stream(shards_of(clips)))
    assert len(unlabeled) == 2 and all(not clip.meta.get("gt") for clip in unlabeled)
    with pytest.raises(ShardError, match="no clip carries ground-truth boxes"):
        write_truth_pairs(clips, tmp_path / "pairs", pairs=8)


def test_pairs_are_cut_from_clips_only(clips, tmp_path):
    exact = write_truth_pairs(clips, tmp_path / "exact", pairs=4, max_gap=MAX_GAP)
    with pytest.raises(ShardError, match="holds pairs, not clips"):
        write_truth_pairs(exact, tmp_path / "again", pairs=4)


def test_the_same_settings_cut_the_same_pairs(clips, tmp_path):
    a = records_of(write_truth_pairs(clips, tmp_path / "a", pairs=20, noise=0.1, seed=5))
    b = records_of(write_truth_pairs(clips, tmp_path / "b", pairs=20, noise=0.1, seed=5))
    c = records_of(write_truth_pairs(clips, tmp_path / "c", pairs=20, noise=0.1, seed=6))
    assert a == b
    assert len(a) >= 10
    assert [r.key for r in a] != [r.key for r in c]  # another seed draws other frames
