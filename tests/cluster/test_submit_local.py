"""`pul submit --profile local`: the same path as on Slurm (submitit, a Ray head started for
the job, the job function on it), as a process on this machine; and the one-line errors."""

from __future__ import annotations

import pytest

from cluster.records import find, state
from tests.cluster.conftest import wait_until
from tests.helpers import run_cli, tiny_clips


@pytest.mark.slow
@pytest.mark.ray
def test_a_local_submission_trains_through_the_cluster_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUL_HOME", str(tmp_path / "home"))
    clips = tiny_clips(tmp_path / "data")
    run_dir = tmp_path / "runs" / "bd"
    code, out, _ = run_cli(
        capsys,
        "submit",
        "bd",
        "--profile",
        "local",
        f"profile.storage={tmp_path / 'cluster'}",
        "--data",
        str(clips),
        "--run-dir",
        str(run_dir),
        f"tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "model.width=0.25",
        "pool=16",
        "train.steps=4",
        "train.batch_size=4",
        "train.checkpoint_every=2",
        "train.cpus_per_worker=0.5",
    )
    assert code == 0 and "submitted job" in out
    job = out.split("submitted job ", 1)[1].split()[0]
    record = find(job)
    final = wait_until(
        lambda: (s := state(record)) != "RUNNING" and s, 300, "the local job", interval=1.0
    )
    log = record.stdout.read_text()
    assert final == "COMPLETED", log[-2000:] + record.stderr.read_text()[-2000:]
    assert "Ray cluster" in log and "1 nodes" in log
    assert (run_dir / "model.pt").is_file() and (run_dir / "workers.json").is_file()
    code, out, _ = run_cli(capsys, "jobs", "status", job)
    assert code == 0 and "COMPLETED" in out


def test_an_unknown_profile_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUL_HOME", str(tmp_path))
    code, _, err = run_cli(
        capsys, "submit", "bd", "--profile", "nope", "--data", "x", "--run-dir", "y"
    )
    assert code == 2 and err.count("\n") == 1 and "no profile 'nope'" in err and "dev" in err


def test_a_bad_profile_value_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUL_HOME", str(tmp_path))
    code, _, err = run_cli(
        capsys, "submit", "bd", "--profile", "local", "profile.nodes=2", "--data", "x"
    )
    assert code == 2 and err.count("\n") == 1 and "local executor runs one node" in err


def test_an_unknown_job_id_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUL_HOME", str(tmp_path))
    code, _, err = run_cli(capsys, "jobs", "logs", "999999")
    assert code == 2 and "no job 999999 was submitted from here" in err
