"""Damaged shard sets: stage 1, stage 3 and supervised training read through them and report
what they skipped; mining records it in the pair manifest; past `max_damaged` every stage
stops in one line naming the damaged shards; `pul shards verify` finds a flipped crop byte.

Each set is damaged as the field damages sets: one byte flipped inside a JPEG member, the
tar itself intact.
"""

from __future__ import annotations

import itertools
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from jobs.cli import main
from jobs.config import from_dict
from jobs.errors import JobError
from jobs.mine import mine
from jobs.pack import pack
from jobs.train.bd import BDConfig, BDStage
from jobs.train.damage import DAMAGED_TAG, SKIPPED
from jobs.train.job import train_stage
from jobs.train.loading import chunks
from jobs.train.loop import Loader
from jobs.train.pair_chunks import PairChunks
from jobs.train.pair_noise import relative_noise
from jobs.train.pair_stream import pair_batches
from jobs.train.tc import TCConfig, TCStage
from pul.losses import sigma_from_cycle_errors
from pul.models import ModelConfig, build_model
from pul.pairs import PairConfig
from pul.weights import save_weights
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.reader import SkipCounter
from shards.synth import SynthConfig, generate
from tests.helpers import TWO_SMALL_WORKERS
from tests.jobs.test_mine import job_config, make_videos
from tests.shards.damage_fixtures import flip_byte, make_pair_set

CLIP_SHARD = "clips-000001.tar"
IN_PROCESS = Loader(workers=0, prefetch=2, device=torch.device("cpu"))
"""What a rank of the 2-worker runs below uses on 2 CPUs (loader_workers=-1: none)."""


def damage_every_frame(clips: Path, shard: str) -> str:
    """Flip a byte in every frame of the first clip of `shard`; returns the clip's key."""
    path = clips / shard
    names = [n for n in _members(path) if n.endswith(".jpg")]
    key = names[0].split(".")[0]
    for name in names:
        if name.startswith(key + "."):
            flip_byte(path, name)
    return key


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


@pytest.fixture(scope="module")
def damaged_clips(tmp_path_factory) -> Path:
    """3 synthetic labeled videos, one 24-frame clip each, one clip per shard; every frame
    of the clip in clips-000001.tar fails its CRC-32 (whichever frame is drawn is damaged)."""
    root = tmp_path_factory.mktemp("damaged")
    videos = root / "videos"
    generate(SynthConfig(videos=3, frames=24, width=160, height=120, seed=3), videos, False)
    clips = root / "clips"
    cfg = PackConfig(sources=[str(videos)], workers=1, clip_len=24, max_side=160, shard_mb=0.01)
    pack(cfg, clips, ["t"], False)
    assert [s.name for s in read_manifest(clips).shards][1] == CLIP_SHARD
    damage_every_frame(clips, CLIP_SHARD)
    return clips


@pytest.fixture
def damaged_pairs(tmp_path) -> Path:
    """12 mined-looking pairs in 2 shards; one search crop of each shard has a flipped byte."""
    pairs = make_pair_set(tmp_path / "pairs")
    flip_byte(pairs / "pairs-000000.tar", "synth_v00_clip0000_s0000_t0002_1.x.jpg")
    flip_byte(pairs / "pairs-000001.tar", "synth_v01_clip0000_s0000_t0002_4.z.jpg")
    return pairs


def replayed_skips(stage, steps: int, monkeypatch, ranks: int = 2) -> int:
    """What every rank's stream of `stage` skips in `steps` batches, replayed here: ranks
    draw seeded streams (RANK, WORLD_SIZE), and within these few steps the draws do not
    depend on the weights, so this is the count the run must report."""
    total = 0
    monkeypatch.setenv("WORLD_SIZE", str(ranks))
    for rank in range(ranks):
        monkeypatch.setenv("RANK", str(rank))
        batches = stage.batches(0, stage.build_model(), IN_PROCESS)
        total += sum(int(batch[SKIPPED].sum()) for batch in itertools.islice(batches, steps))
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    return total


def run_of(run_dir: Path) -> tuple[MlflowClient, str]:
    saved = json.loads((run_dir / "mlflow_run.json").read_text())
    return MlflowClient(saved["tracking_uri"]), saved["run_id"]


def tiny_train(**fields) -> dict:
    return {"steps": 4, "batch_size": 4, "checkpoint_every": 4, **TWO_SMALL_WORKERS, **fields}


@pytest.mark.slow
@pytest.mark.ray
def test_stage_1_trains_through_a_damaged_clip_and_reports_the_count(
    damaged_clips, tmp_path, ray_local, monkeypatch
):
    cfg = from_dict(
        BDConfig,
        {
            "data": str(damaged_clips),
            "model": {"width": 0.25},
            "pool": 16,
            "shuffle": 4,
            "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "train": tiny_train(lr=1e-3, lr_end=1e-4),
        },
    )
    expected = replayed_skips(BDStage(cfg), 4, monkeypatch)
    assert expected >= 1  # the damaged clip is drawn: this test tests something

    train_stage("bd", cfg, tmp_path / "bd")  # trains through it: no error

    client, run_id = run_of(tmp_path / "bd")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run_id, SKIPPED)
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert history[-1].value == expected  # summed over both ranks
    lineage = read_manifest(damaged_clips).lineage
    assert run.data.tags["pul.data_lineage"] == lineage + "+damaged"
    assert run.data.tags[DAMAGED_TAG] == str(expected)


@pytest.mark.slow
@pytest.mark.ray
def test_stage_3_trains_through_damaged_crops_and_reports_the_count(
    damaged_pairs, tmp_path, ray_local, monkeypatch
):
    cfg = from_dict(
        TCConfig,
        {
            "data": str(damaged_pairs),
            "model": {"width": 0.25},
            "pool": 8,
            "shuffle": 4,
            "gap_start": 2,
            "gap_end": 2,
            "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "train": tiny_train(checkpoint_every=2),
        },
    )
    expected = replayed_skips(TCStage(cfg), 4, monkeypatch)
    assert expected >= 1

    train_stage("tc", cfg, tmp_path / "tc")

    client, run_id = run_of(tmp_path / "tc")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_metric_history(run_id, SKIPPED)[-1].value == expected
    assert run.data.tags["pul.data_lineage"].endswith("+damaged")
    assert run.data.tags[DAMAGED_TAG] == str(expected)


@pytest.mark.slow
@pytest.mark.ray
def test_past_the_damaged_share_training_stops_in_one_line_naming_the_shard(
    damaged_clips, tmp_path, ray_local, capsys
):
    code = main(
        [
            "train",
            "supervised",
            "--data",
            str(damaged_clips),
            "--run-dir",
            str(tmp_path / "sup"),
            f"tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "model.width=0.25",
            "pairs.max_gap=4",
            "shuffle=4",
            "train.steps=20",
            "train.batch_size=2",
            "train.workers=1",
            "train.max_failures=0",
            "train.max_damaged=0",
            "train.max_damaged_floor=0",
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()  # MLflow's INFO lines come first
    errors = [line for line in lines if line.startswith("pul:")]
    assert code == 2 and errors == lines[-1:]
    assert errors[0].startswith("pul: error: 1 of ")
    assert f"{CLIP_SHARD} in {damaged_clips}" in errors[0] and "max_damaged=0 " in errors[0]


def test_supervised_batches_carry_the_skips_out_of_their_loader_process(damaged_clips):
    """With a DataLoader process the counter lives there; the batches bring the count."""

    def skipped(loader_workers: int, skips: SkipCounter) -> int:
        batches = pair_batches(
            str(damaged_clips), PairConfig(max_gap=4), 2, 7, loader_workers, 4, skips=skips
        )
        return sum(int(b[SKIPPED].sum()) for b in itertools.islice(batches, 6))

    here = SkipCounter()
    in_process = skipped(0, here)
    elsewhere = SkipCounter()
    assert skipped(1, elsewhere) == in_process >= 1
    assert here.total >= in_process and elsewhere.total == 0  # counted in the other process


def test_mining_skips_a_damaged_clip_and_records_it_in_the_manifest(tmp_path):
    clips = _mine_inputs(tmp_path)
    key = damage_every_frame(clips, CLIP_SHARD)
    model = tmp_path / "model.pt"
    manifest = mine(job_config((clips, model), workers=1), tmp_path / "pairs", ["t"], False)
    source = read_manifest(clips)
    extra = manifest.extra
    assert extra["skipped_clips"] == 1
    assert extra["damaged_shards"] == {CLIP_SHARD: {"skipped": 1, "keys": [key], "read": 1}}
    assert extra["source_lineage"] == source.lineage + "+damaged"
    assert manifest.samples > 0 and extra["clips_with_pairs"] == 1  # the intact clip's pairs
    assert not (tmp_path / "pairs" / ".staging").exists()
    # a lost shard is mined again; the record of the kept one comes back from the manifest
    (tmp_path / "pairs" / "pairs-000000.tar").unlink()
    again = mine(job_config((clips, model), workers=1), tmp_path / "pairs", ["t"], False)
    assert again.extra["damaged_shards"] == extra["damaged_shards"]
    assert again.extra["source_lineage"] == extra["source_lineage"]
    assert again.lineage == manifest.lineage


def test_mining_past_the_damaged_share_stops_in_one_line_naming_the_shard(tmp_path):
    clips = _mine_inputs(tmp_path)
    damage_every_frame(clips, CLIP_SHARD)
    cfg = job_config((clips, tmp_path / "model.pt"), workers=1)
    cfg.max_damaged, cfg.max_damaged_floor = 0.1, 0
    with pytest.raises(JobError) as err:
        mine(cfg, tmp_path / "pairs", ["t"], False)
    message = str(err.value)
    assert "\n" not in message and message.startswith("1 of 2 samples read are damaged")
    assert f"{CLIP_SHARD} in {clips.resolve()}" in message
    # the pairs of the damaged shard are not kept: a rerun on repaired data mines it again
    assert not list((tmp_path / "pairs" / ".staging").glob("pairs-000001*"))


def _mine_inputs(tmp_path: Path) -> Path:
    """test_mine's two clips (one per shard) and an untrained width-0.25 model."""
    videos = make_videos(tmp_path / "otb")
    cfg = PackConfig(sources=[str(videos)], workers=1, clip_len=12, shard_mb=0.001)
    pack(cfg, tmp_path / "clips", command=["test"], progress=False)
    torch.manual_seed(0)
    model_cfg = ModelConfig(width=0.25)
    save_weights(build_model(model_cfg), model_cfg, tmp_path / "model.pt")
    return tmp_path / "clips"


def test_stage_3_loader_reads_a_bounded_number_of_pairs_when_none_pass_the_gap_limit(
    tmp_path,
):
    pairs = make_pair_set(tmp_path / "pairs", gap=8)  # every pair 8 frames apart
    limit = torch.tensor([4], dtype=torch.int32)
    dataset = PairChunks(str(pairs), 0, 0, 4, limit, lambda record: 1.0, SkipCounter)
    beyond = "none of 80 pairs read in a row has a gap of at most 4 frames"
    with pytest.raises(JobError, match=beyond):
        next(chunks(dataset, IN_PROCESS))
    limit[0] = 8  # the trainer raised the limit: the same stream now fills its chunks
    assert len(next(chunks(dataset, IN_PROCESS))["gap"]) == 4


def test_verify_exits_1_naming_the_shard_with_a_flipped_crop_byte(damaged_pairs, capsys):
    assert main(["shards", "verify", str(damaged_pairs)]) == 1
    err = capsys.readouterr().err
    assert "BAD pairs-000000.tar" in err and "BAD pairs-000001.tar" in err
    assert "synth_v00_clip0000_s0000_t0002_1: x.jpg fails its checksum" in err


def test_stage_3_noise_estimate_skips_a_damaged_pair_record(tmp_path):
    pairs = make_pair_set(tmp_path / "pairs")
    flip_byte(pairs / "pairs-000001.tar", "synth_v01_clip0000_s0000_t0002_4.json", at=0.1)
    noise = relative_noise(str(pairs), read_manifest(pairs))
    # the 11 intact records: cycle errors 1.0 + 0.1 i px on 32 x 32 seed boxes
    intact = [(1.0 + 0.1 * i) / 32 for s in range(2) for i in range(6) if (s, i) != (1, 4)]
    assert noise == pytest.approx(sigma_from_cycle_errors(np.array(intact), max_error_px=None))
