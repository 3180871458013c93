"""Stage 3 (TC): a switched-off contrastive term trains under DDP, and an init file is
either loaded whole or refused in one line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from jobs.cli import main
from jobs.config import from_dict
from jobs.errors import JobError
from jobs.train.job import train_stage
from jobs.train.tc import TCConfig, TCStage
from pul.models import ModelConfig, build_model
from pul.weights import load_weights, save_weights
from shards.manifest import Manifest, ShardEntry, sha256_file, write_manifest
from shards.pairs import X_OUT, Z_OUT, PairRecord, pair_sample, write_pair_shard
from tests.helpers import TWO_SMALL_WORKERS

PAIRS = 24


def write_pairs(folder, count: int = PAIRS):
    """A tiny pair set as `pul mine` writes it: one shard, textured crops, a 64 px box at
    the centre of both crops (gap 2), and its manifest. No mining, so no minutes."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(count):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        z = cv2.resize(small, (Z_OUT, Z_OUT), interpolation=cv2.INTER_LINEAR)
        x = cv2.resize(small, (X_OUT, X_OUT), interpolation=cv2.INTER_LINEAR)
        record = PairRecord(
            clip=f"synth_v{i:02d}_clip0000",
            seed_index=0,
            seed_frame=0,
            target_frame=2,
            frames=(0, 2),
            gap=2,
            seed_box=(40.0, 30.0, 64.0, 64.0),
            box=(41.0, 31.0, 64.0, 64.0),
            z_box=(95.5, 95.5, 64.0, 64.0),
            x_box=(160.0, 160.0, 64.0, 64.0),
            confidence=0.9,
            cycle_error=float(rng.uniform(0.5, 3.0)),
        )
        samples.append(pair_sample(record, z, x))
    shard = folder / "pairs-000000.tar"
    write_pair_shard(shard, samples)
    entry = ShardEntry(shard.name, count, shard.stat().st_size, sha256_file(shard))
    write_manifest(folder, Manifest("pairs", [entry], extra={"pairs_per_gap": {"2": count}}))
    return folder


def saved_model(path, **model) -> ModelConfig:
    cfg = ModelConfig(**model)
    torch.manual_seed(1)
    save_weights(build_model(cfg), cfg, path)
    return cfg


@pytest.mark.slow
@pytest.mark.ray
def test_contrastive_weight_0_trains_on_two_ddp_workers(tmp_path, ray_local):
    pairs = write_pairs(tmp_path / "pairs")
    init = tmp_path / "bd.pt"
    saved_model(init, width=0.25)
    cfg = from_dict(
        TCConfig,
        {
            "data": str(pairs),
            "init": str(init),
            "model": {"width": 0.25},
            "pool": 8,
            "gap_start": 2,
            "gap_end": 2,
            "contrastive_weight": 0.0,
            "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "train": {"steps": 3, "batch_size": 4, "checkpoint_every": 3, **TWO_SMALL_WORKERS},
        },
    )
    model_file = train_stage("tc", cfg, tmp_path / "runs" / "tc")

    run_id = json.loads((tmp_path / "runs" / "tc" / "mlflow_run.json").read_text())["run_id"]
    client = MlflowClient(cfg.tracking_uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    losses = client.get_metric_history(run_id, "loss")
    assert [m.step for m in losses] == [0, 1, 2]
    assert all(np.isfinite(m.value) and m.value > 0 for m in losses)
    assert client.get_metric_history(run_id, "loss_contrastive") == []
    workers = json.loads((tmp_path / "runs" / "tc" / "workers.json").read_text())
    assert [w["rank"] for w in workers] == [0, 1]
    # the projection head took no part (still the init's), the tracker itself learned
    trained, start = load_weights(model_file).state_dict(), load_weights(init).state_dict()
    for key in (k for k in start if k.startswith("projection.")):
        assert torch.equal(trained[key], start[key]), key
    assert not torch.equal(trained["backbone.conv1.0.weight"], start["backbone.conv1.0.weight"])


def test_an_init_of_another_architecture_is_refused_in_one_line(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs")
    init = tmp_path / "alex.pt"
    saved_model(init, backbone="alexnet", width=0.5)  # same output channels as resnet22 0.25
    assert build_model(ModelConfig("alexnet", 0.5)).out_channels == 128
    assert build_model(ModelConfig("resnet22", 0.25)).out_channels == 128
    args = ["train", "tc", "--data", str(pairs), "--run-dir", str(tmp_path / "run")]
    code = main([*args, f"init={init}", "model.backbone=resnet22", "model.width=0.25"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("pul: error: init: ")
    assert "alexnet width=0.5" in err and "model.backbone=resnet22 width=0.25" in err
    assert not (tmp_path / "run" / "mlflow_run.json").exists()  # refused before any run


@pytest.mark.parametrize(
    ("init_model", "message"),
    [
        (("alexnet", 0.5), "backbone.conv1.0.weight has no place in it"),
        (("resnet22", 0.5), "backbone.conv1.weight is [32, 3, 7, 7], not [16, 3, 7, 7]"),
    ],
)
def test_the_stage_refuses_an_init_it_cannot_load_whole(tmp_path, init_model, message):
    pairs = write_pairs(tmp_path / "pairs")
    init = tmp_path / "init.pt"
    saved_model(init, backbone=init_model[0], width=init_model[1])
    cfg = TCConfig(data=str(pairs), init=str(init), model=ModelConfig("resnet22", 0.25))
    with pytest.raises(JobError) as refused:
        TCStage(cfg)
    assert f"holds backbone={init_model[0]} width={init_model[1]}," in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize("projection", [True, False])
def test_a_matching_init_loads_every_parameter(tmp_path, projection):
    pairs = write_pairs(tmp_path / "pairs")
    init = tmp_path / "init.pt"
    model = ModelConfig("resnet22", 0.25)
    torch.manual_seed(1)
    net = build_model(model)
    if not projection:
        net.projection = None  # e.g. a supervised model: the stage adds the head itself
    save_weights(net, model, init)
    saved = load_weights(init).state_dict()

    torch.manual_seed(2)  # the stage's fresh network differs from the file everywhere
    built = TCStage(TCConfig(data=str(pairs), init=str(init), model=model)).build_model()
    loaded = built.net.state_dict()
    expected = [k for k in loaded if projection or not k.startswith("projection.")]
    assert len([k for k in expected if k.startswith("backbone.")]) > 100
    for key in expected:
        assert torch.equal(loaded[key], saved[key]), key
    assert set(saved) == set(expected)
