"""PUL end to end on tiny data: stage 1 (BD) -> stage 2 (mining) -> stage 3 (TC), each
training stage on Ray Train with 2 workers, logged to a real MLflow SQLite store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow import MlflowClient

from jobs.config import from_dict
from jobs.mine import MineJobConfig, mine
from jobs.pack import pack
from jobs.train.bd import BDConfig
from jobs.train.job import train_stage
from jobs.train.tc import TCConfig
from pul.tracker import SiamFCTracker
from pul.weights import load_weights
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from shards.verify import verify_set

TWO_SMALL_WORKERS = {"workers": 2, "cpus_per_worker": 0.5, "log_every": 1, "max_failures": 0}


@pytest.mark.slow
@pytest.mark.ray
def test_stage_1_2_3_on_tiny_data(tmp_path, ray_local):
    videos = tmp_path / "videos"
    generate(SynthConfig(videos=3, frames=24, width=160, height=120, seed=3), videos, False)
    pack(
        PackConfig(sources=[str(videos)], workers=1, clip_len=24, max_side=160),
        tmp_path / "clips",
        ["t"],
        False,
    )
    mlflow = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "e2e"}

    bd = from_dict(
        BDConfig,
        {
            "data": str(tmp_path / "clips"),
            "model": {"width": 0.25},
            "pool": 16,
            **mlflow,
            "train": {
                "steps": 4,
                "batch_size": 4,
                "checkpoint_every": 4,
                "lr": 1e-3,
                "lr_end": 1e-4,
                **TWO_SMALL_WORKERS,
            },
        },
    )
    bd_model = train_stage("bd", bd, tmp_path / "runs" / "bd")
    assert (tmp_path / "runs" / "bd" / "ahm_batches.png").stat().st_size > 10_000

    mined = mine(
        from_dict(
            MineJobConfig,
            {
                "data": str(tmp_path / "clips"),
                "model": str(bd_model),
                "workers": 1,
                # many seeds and loose gates: 4 steps of BD cannot make a good tracker, and
                # this test is about the stages fitting together, not about pair quality
                "mining": {
                    "proposer": "random",
                    "seeds_per_clip": 16,
                    "gaps": [2, 4, 8],
                    "min_confidence": 0.3,
                    "max_cycle_error": 0.3,
                },
            },
        ),
        tmp_path / "pairs",
        command=["t"],
        progress=False,
    )
    assert mined.kind == "pairs" and mined.samples > 0
    reports = verify_set(tmp_path / "pairs")  # every pair sample decodes
    assert all(r.ok for r in reports) and sum(r.samples for r in reports) == mined.samples

    tc = from_dict(
        TCConfig,
        {
            "data": str(tmp_path / "pairs"),
            "init": str(bd_model),
            "model": {"width": 0.25},
            "pool": 8,
            "gap_start": 2,
            "gap_end": 8,
            "contrastive_weight": 0.1,
            **mlflow,
            "train": {"steps": 4, "batch_size": 4, "checkpoint_every": 2, **TWO_SMALL_WORKERS},
        },
    )
    tc_model = train_stage("tc", tc, tmp_path / "runs" / "tc")

    client = MlflowClient(mlflow["tracking_uri"])
    run_id = json.loads((tmp_path / "runs" / "tc" / "mlflow_run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["pul.stage"] == "tc" and run.data.params["loss.kind"] == "nr"
    for key in ("loss_response", "loss_contrastive", "loss"):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [0, 1, 2, 3]
        assert all(np.isfinite(m.value) for m in history)

    # the stage-3 model is a tracker: it loads without unpickling code and tracks
    tracker = SiamFCTracker(load_weights(tc_model))
    frame = np.full((120, 160, 3), 90, np.uint8)
    tracker.init(frame, (60, 40, 30, 30))
    assert tracker.update(frame).shape == (4,)
