"""The training runner on a real local Ray cluster: resume after a kill, NaN stop, errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from jobs.config import from_dict
from jobs.pack import pack
from jobs.train.job import train_supervised
from jobs.train.runner import TrainingError
from jobs.train.supervised import SupervisedConfig
from shards.pack_config import PackConfig
from tests.helpers import pul_command, pul_killed_when, run_cli
from tests.shards.clip_fixtures import make_otb_set

TINY = [
    "model.width=0.25",
    "train.workers=2",
    "train.batch_size=2",
    "train.log_every=2",
    "pairs.max_gap=4",
    "shuffle=4",
]


@pytest.fixture(scope="module")
def labeled_clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    src = make_otb_set(root / "otb", videos=3, frames=16, size=(160, 120))
    pack(PackConfig(sources=[str(src)], workers=1, clip_len=8), root / "clips", ["t"], False)
    return root / "clips"


def _run_info(run_dir: Path) -> tuple[MlflowClient, str]:
    saved = json.loads((run_dir / "mlflow_run.json").read_text())
    return MlflowClient(saved["tracking_uri"]), saved["run_id"]


@pytest.mark.slow
@pytest.mark.ray
def test_a_run_killed_after_a_checkpoint_resumes_from_it(labeled_clips, tmp_path):
    run_dir = tmp_path / "runs" / "sup"
    argv = ["train", "supervised", "--data", str(labeled_clips), "--run-dir", str(run_dir)]
    argv += ["train.steps=60", "train.checkpoint_every=4", *TINY]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    checkpoints = run_dir / "ray" / "train"
    # the snapshot appears once Ray Train has registered a checkpoint (resumable from)
    snapshot = checkpoints / "checkpoint_manager_snapshot.json"
    pul_killed_when(argv, snapshot.exists, 240, env=env, log=tmp_path / "first.log")
    assert list(checkpoints.glob("checkpoint_*")), "no checkpoint before the kill"
    assert not (run_dir / "model.pt").exists()

    resumed = subprocess.run(
        pul_command(*argv), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    client, run_id = _run_info(run_dir)
    history = client.get_metric_history(run_id, "resumed_at_step")
    assert history and history[0].value >= 4 and history[0].value % 4 == 0
    losses = client.get_metric_history(run_id, "loss")
    assert max(m.step for m in losses) == 59
    assert client.get_run(run_id).info.status == "FINISHED"
    assert (run_dir / "model.pt").is_file() and (run_dir / "responses.png").is_file()


@pytest.mark.ray
def test_a_non_finite_loss_stops_every_rank_with_a_clear_error(labeled_clips, tmp_path, ray_local):
    data = {"data": str(labeled_clips), "tracking_uri": f"sqlite:///{tmp_path}/m.db"}
    cfg = from_dict(
        SupervisedConfig,
        {
            **data,
            "model": {"width": 0.25},
            "shuffle": 4,
            "pairs": {"max_gap": 4},
            "train": {
                "steps": 50,
                "lr": 1e12,
                "lr_end": 1e12,
                "batch_size": 2,
                "cpus_per_worker": 0.5,
                "checkpoint_every": 25,
                "max_failures": 0,
            },
        },
    )
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at step \d+"):
        train_supervised(cfg, tmp_path / "run")
    client, run_id = _run_info(tmp_path / "run")
    assert client.get_run(run_id).info.status == "FAILED"


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    nope, run_dir = str(tmp_path / "nope"), str(tmp_path / "r")
    code, _, err = run_cli(capsys, "train", "supervised", "--data", nope, "--run-dir", run_dir)
    assert code == 2 and err.count("\n") == 1 and "nope" in err


def test_a_run_dir_with_another_config_is_refused(labeled_clips, tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("data: elsewhere\n")
    code, _, err = run_cli(
        capsys, "train", "supervised", "--data", str(labeled_clips), "--run-dir", str(run_dir)
    )
    assert code == 2 and "holds a run with a different config" in err


def test_an_unreachable_tracking_server_fails_at_start(
    labeled_clips, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: nothing there
    run_dir = str(tmp_path / "r")
    code, _, err = run_cli(
        capsys, "train", "supervised", "--data", str(labeled_clips), "--run-dir", run_dir
    )
    assert code == 2 and err.count("\n") == 1
    assert "MLflow tracking server at http://127.0.0.1:9 is unreachable" in err
    assert not (tmp_path / "r" / "ray").exists()  # failed before any training started
