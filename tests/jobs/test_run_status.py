"""Every MLflow run a job opens ends FINISHED, FAILED or KILLED, whatever stops the job:
an error, Ctrl-C or SIGTERM; in a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

import jobs.pipeline.run
import jobs.train.job
from jobs.cli import main
from jobs.pack import pack
from jobs.train.job import run_stage
from jobs.train.tc import TCConfig
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from tests.jobs.test_pipeline import TINY
from tests.jobs.test_stage3_checks import write_pairs

ROOT = Path(__file__).resolve().parents[2]


def _runs(uri: str) -> dict[str, list]:
    """The runs of experiment 'pul', by their pul.stage tag, oldest first."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("pul").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    by_stage: dict[str, list] = {}
    for run in runs:
        by_stage.setdefault(run.data.tags["pul.stage"], []).append(run)
    return by_stage


@pytest.mark.parametrize(
    ("stop", "status"), [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_a_training_run_ends_failed_on_an_error_and_killed_on_ctrl_c(
    tmp_path, monkeypatch, stop, status
):
    def fit(*args, **kwargs):
        raise stop  # what Ray Train's fit raises: a worker's error, or the user's Ctrl-C

    monkeypatch.setattr(jobs.train.job, "fit", fit)
    pairs = write_pairs(tmp_path / "pairs")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = TCConfig(data=str(pairs), tracking_uri=uri)
    with pytest.raises(type(stop)):
        run_stage("tc", object(), cfg, str(pairs), tmp_path / "runs" / "tc")
    (run,) = _runs(uri)["tc"]
    assert run.info.status == status
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time


def test_sigterm_ends_the_run_killed_and_the_process_with_143(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from jobs.tracking.runs import tracked_run

        with tracked_run({uri!r}, "pul", Path({str(tmp_path / "run")!r}), "job",
                         {{"pul.stage": "job"}}):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)  # never reached: SIGTERM unwinds the block
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 143, done.stderr[-2000:]
    (run,) = _runs(uri)["job"]
    assert run.info.status == "KILLED"


@pytest.fixture
def clips(tmp_path) -> Path:
    videos = tmp_path / "videos"
    generate(SynthConfig(videos=2, frames=16, width=160, height=120, seed=2), videos, False)
    folder = tmp_path / "clips"
    pack(PackConfig(sources=[str(videos)], workers=1, clip_len=16, max_side=160), folder, ["t"])
    return folder


def _pipeline_config(tmp_path: Path, clips: Path, **mine) -> Path:
    bench = tmp_path / "bench"  # never reached: the pipeline stops at mining
    bench.mkdir(exist_ok=True)
    one_worker = {"workers": 1, "cpus_per_worker": 1, "max_failures": 0}
    bd = {**TINY["bd"], "train": {**TINY["bd"]["train"], "steps": 2, "checkpoint_every": 2}}
    bd["train"].update(one_worker)
    data = {
        **TINY,
        "data": {"clips": str(clips)},
        "benchmark": {"root": str(bench)},
        "bd": bd,
        "mine": {**TINY["mine"], **mine},
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
@pytest.mark.ray
def test_a_failing_or_interrupted_pipeline_step_ends_its_run_and_the_parent(
    tmp_path, clips, ray_local, capsys, monkeypatch
):
    # one code version for both runs, though the checkout may be edited in between
    monkeypatch.setattr(jobs.pipeline.run, "code_version", lambda: "code-under-test")
    work = tmp_path / "work"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # a bad config value that only the mining step finds out about
    config = _pipeline_config(tmp_path, clips, device="cuda")
    capsys.readouterr()
    code = main(["pipeline", "--config", str(config), "--work", str(work)])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().endswith("device=cuda, but this machine has no CUDA device")
    runs = _runs(uri)
    assert {stage: len(found) for stage, found in runs.items()} == {
        "pipeline": 1,
        "bd": 1,
        "mine": 1,
    }
    parent = runs["pipeline"][0]
    assert parent.info.status == "FAILED"
    assert runs["bd"][0].info.status == "FINISHED"
    assert runs["mine"][0].info.status == "FAILED"
    assert runs["mine"][0].data.tags["mlflow.parentRunId"] == parent.info.run_id

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the shards are being mined

    monkeypatch.setattr(jobs.pipeline.run, "mine", interrupted)
    config = _pipeline_config(tmp_path, clips, device="cpu")
    assert main(["pipeline", "--config", str(config), "--work", str(work)]) == 130
    runs = _runs(uri)
    assert len(runs["bd"]) == 1  # stage 1 was found done
    assert [r.info.status for r in runs["pipeline"]] == ["FAILED", "KILLED"]
    assert [r.info.status for r in runs["mine"]] == ["FAILED", "KILLED"]
    assert not [r for found in runs.values() for r in found if r.info.status == "RUNNING"]
    assert not (work / "pipeline.json").exists()  # written only by a finished pipeline
