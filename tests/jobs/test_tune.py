"""`pul tune`: a real Ray Tune sweep of stage 3 (each trial a Ray Train run nested in the
sweep's MLflow run), scored on a benchmark, resumed by a rerun; and its bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from jobs.cli import main
from jobs.config import from_dict
from jobs.mine import MineJobConfig, mine
from jobs.pack import pack
from jobs.train.bd import BDConfig
from jobs.train.job import train_stage
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate

SMALL = {"width": 160, "height": 120}


def _stage_1_and_2(root: Path, uri: str) -> tuple[Path, Path]:
    """Tiny clips, 4 steps of stage 1, loose mining: inputs for a sweep, not a good tracker."""
    videos = root / "videos"
    generate(SynthConfig(videos=3, frames=24, seed=3, **SMALL), videos, False)
    clips = root / "clips"
    pack(
        PackConfig(sources=[str(videos)], workers=1, clip_len=24, max_side=160), clips, ["t"], False
    )
    train = {"steps": 4, "batch_size": 4, "checkpoint_every": 4, "lr": 1e-3, "lr_end": 1e-4}
    bd = {"data": str(clips), "model": {"width": 0.25}, "pool": 16, "train": train}
    bd_model = train_stage("bd", from_dict(BDConfig, {**bd, "tracking_uri": uri}), root / "bd")
    mining = {
        "proposer": "random",
        "seeds_per_clip": 16,
        "gaps": [2, 4, 8],
        "min_confidence": 0.3,
        "max_cycle_error": 0.3,
    }
    cfg = {"data": str(clips), "model": str(bd_model), "workers": 1, "mining": mining}
    mine(from_dict(MineJobConfig, cfg), root / "pairs", ["t"], False)
    return root / "pairs", bd_model


@pytest.mark.slow
@pytest.mark.ray
def test_a_sweep_trains_every_grid_point_ranks_them_and_resumes(tmp_path, ray_local, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    pairs, bd_model = _stage_1_and_2(tmp_path, uri)
    bench = tmp_path / "bench"
    generate(SynthConfig(split="bench", videos=2, frames=20, seed=4, **SMALL), bench, False)
    argv = [
        "tune",
        "--data", str(pairs),
        "--init", str(bd_model),
        "--benchmark", str(bench),
        "--work", str(tmp_path / "sweep"),
        f"tracking_uri={uri}",
        "noise=[0,auto]",
        "batch_size=[4]",
        "tc.model.width=0.25",
        "tc.pool=16",
        "tc.gap_start=2",
        "tc.gap_end=8",
        "tc.train.batch_size=4",
        "tc.train.steps=4",
        "tc.train.checkpoint_every=2",
        "tc.train.lr=1e-3",
        "tc.train.lr_end=1e-4",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| 0.0 |") or line.startswith("| auto |")
    ]
    assert len(rows) == 2
    aucs = [float(row.split("|")[3]) for row in rows]
    assert aucs == sorted(aucs, reverse=True) and all(0.0 <= a <= 1.0 for a in aucs)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("pul").experiment_id])
    sweep_run = next(r for r in runs if r.data.tags.get("pul.stage") == "tune")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep_run.info.run_id]
    assert sorted(r.data.params["loss.noise"] for r in trials) == ["0.0", "auto"]
    assert sorted(r.data.params["train.batch_size"] for r in trials) == ["4", "4"]
    assert sweep_run.data.metrics["best_auc"] == pytest.approx(max(aucs), abs=5e-4)  # table: 3 dp
    results = next((tmp_path / "sweep").glob("tune-*/results.md")).read_text()
    assert results.count("\n") == 4  # header, rule, two trials

    assert main(argv) == 0  # a rerun finds every trial done
    capsys.readouterr()
    again = client.search_runs([client.get_experiment_by_name("pul").experiment_id])
    assert len([r for r in again if r.data.tags.get("pul.stage") == "tc"]) == 2


def test_a_sweep_without_its_inputs_is_one_line(tmp_path, capsys):
    code = main(["tune", "--data", str(tmp_path / "nope"), "--init", "x", "--benchmark", "y"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such path" in err and "nope" in err


def test_an_empty_grid_is_refused(tmp_path, capsys):
    assert main(["tune", "noise=[]"]) == 2
    assert "noise and batch_size need at least one value each" in capsys.readouterr().err
