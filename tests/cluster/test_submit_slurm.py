"""`pul submit` on the real 2-node dev Slurm (cluster/dev/): Ray across both nodes, a real
MLflow server, requeue and resume, Slurm's refusal shown, cancellation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from cluster.ray_nodes import free_port
from cluster.records import find, state
from jobs.cli import main
from jobs.tracking.server import serving
from jobs.truth_pairs import write_truth_pairs
from shards.synth import SynthConfig, generate
from tests.cluster.conftest import run, wait_until
from tests.helpers import TINY_BENCH, save_untrained, tiny_clips

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slurm

BD = [
    "model.width=0.25",
    "pool=16",
    "train.batch_size=4",
    "train.lr=1e-3",
    "train.lr_end=1e-4",
    "train.log_every=2",
]


@pytest.fixture
def pul_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PUL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _submit(capsys, *args: str) -> str:
    assert main(["submit", *args]) == 0
    out = capsys.readouterr().out
    return out.split("submitted job ", 1)[1].split()[0]


def _wait_state(job_id: str, wanted: set[str], timeout: float) -> str:
    record = find(job_id)
    ends = wanted | {"FAILED", "CANCELLED"}
    return wait_until(  # sacct says "CANCELLED by 0": compare the first word
        lambda: (s := state(record)).split()[0] in ends and s.split()[0],
        timeout,
        f"job {job_id} to reach {wanted}",
        interval=1.0,
    )


def _resumable_run(pul_home: Path, capsys) -> tuple[str, Path, str]:
    """Submit a 150-step one-node training and wait for its first registered checkpoint
    (Ray Train writes the snapshot once it has taken one: a restart resumes from it)."""
    run_dir = pul_home / "runs" / "bd"
    db = f"sqlite:///{pul_home}/mlflow.db"
    job = _submit(
        capsys,
        "bd",
        "--profile",
        "dev",
        "profile.nodes=1",
        f"profile.storage={pul_home / 'cluster'}",
        "--data",
        str(tiny_clips(pul_home / "data")),
        "--run-dir",
        str(run_dir),
        f"tracking_uri={db}",
        "train.steps=150",
        "train.checkpoint_every=10",
        "train.workers=1",
        *BD,
    )
    snapshot = run_dir / "ray" / "train" / "checkpoint_manager_snapshot.json"
    wait_until(snapshot.exists, 300, "a registered checkpoint")
    return job, run_dir, db


def _assert_resumed_from_a_checkpoint(db: str, run_dir: Path) -> None:
    client = MlflowClient(db)
    run_id = (run_dir / "DONE").read_text().strip()
    resumed = client.get_metric_history(run_id, "resumed_at_step")
    assert resumed and resumed[0].value >= 10 and resumed[0].value % 10 == 0
    assert max(m.step for m in client.get_metric_history(run_id, "loss")) == 149


def test_a_bd_training_runs_ray_on_both_nodes_and_registers_in_a_server(
    dev_slurm, pul_home, capsys
):
    clips = tiny_clips(pul_home / "data")
    run_dir = pul_home / "runs" / "bd"
    with serving(
        f"sqlite:///{pul_home}/server.db", pul_home / "artifacts", "127.0.0.1", free_port()
    ) as uri:
        job = _submit(
            capsys,
            "bd",
            "--profile",
            "dev",
            f"profile.storage={pul_home / 'cluster'}",
            f"profile.mlflow_uri={uri}",
            "--data",
            str(clips),
            "--run-dir",
            str(run_dir),
            "train.steps=6",
            "train.checkpoint_every=3",
            "train.workers=2",
            "train.cpus_per_worker=1",
            "register=true",
            *BD,
        )
        final = _wait_state(job, {"COMPLETED"}, timeout=420)
        log = find(job).stdout.read_text() + find(job).stderr.read_text()
        assert final == "COMPLETED", log[-3000:]

        workers = json.loads((run_dir / "workers.json").read_text())
        assert sorted(w["node"] for w in workers) == sorted(dev_slurm.nodes)  # one per node
        assert f"2 nodes ({', '.join(dev_slurm.nodes)})" in log or "2 nodes" in log

        client = MlflowClient(uri)
        run_id = (run_dir / "DONE").read_text().strip()
        assert client.get_run(run_id).data.tags["pul.train_nodes"] == ",".join(dev_slurm.nodes)
        version = client.get_model_version_by_alias("pul-alexnet", "candidate")
        assert version.run_id == run_id


def test_a_tune_sweep_spreads_its_trials_over_both_nodes_stops_some_and_registers_the_best(
    dev_slurm, pul_home, capsys
):
    # pairs cut from the tiny clips' ground truth: real pair shards without a local Ray
    pairs = write_truth_pairs(tiny_clips(pul_home / "data"), pul_home / "pairs", pairs=64)
    init = save_untrained(pul_home / "init.pt")
    bench = pul_home / "bench"
    generate(SynthConfig(**TINY_BENCH, seed=4), bench, False)
    work, db = pul_home / "sweep", f"sqlite:///{pul_home}/mlflow.db"
    # the tiny Optuna + ASHA preset: 4 trials, each one 1-CPU worker; the two 1-CPU nodes
    # hold two at once, and a trial ASHA stops must give its node back for the next
    job = _submit(
        capsys, "tune", "--profile", "dev", f"profile.storage={pul_home / 'cluster'}",
        "--config", str(ROOT / "configs/sweeps/tiny-cpu.yaml"), "--data", str(pairs),
        "--init", str(init), "--benchmark", str(bench), "--work", str(work),
        f"tracking_uri={db}",
    )  # fmt: skip
    final = _wait_state(job, {"COMPLETED"}, timeout=900)
    log = find(job).stdout.read_text() + find(job).stderr.read_text()
    assert final == "COMPLETED", log[-3000:]

    folder = next(work.glob("tune-*"))
    trials = json.loads((folder / "trials.json").read_text())
    assert len(trials) == 4 and {t["status"] for t in trials} <= {"finished", "stopped"}
    assert any(t["status"] == "stopped" for t in trials), trials
    nodes = {
        worker["node"]
        for workers in folder.glob("trial-*/workers.json")
        for worker in json.loads(workers.read_text())
    }
    assert nodes == set(dev_slurm.nodes)  # the trials ran on both nodes
    client = MlflowClient(db)
    version = client.get_model_version_by_alias("pul-alexnet", "candidate")
    best = max((t for t in trials if t["status"] == "finished"), key=lambda t: t["auc"])
    assert version.tags["pul.train_run"] == best["run_id"]
    assert "registered pul-alexnet version 1 (alias candidate)" in log


def test_a_requeued_job_resumes_from_its_checkpoint(dev_slurm, pul_home, capsys):
    job, run_dir, db = _resumable_run(pul_home, capsys)
    run(["scontrol", "requeue", job])
    final = _wait_state(job, {"COMPLETED"}, timeout=420)
    log = find(job).stdout.read_text()
    assert final == "COMPLETED", log[-3000:]
    assert "(restart 1)" in log

    _assert_resumed_from_a_checkpoint(db, run_dir)


def test_more_gpus_than_the_cluster_has_is_refused_with_slurms_reason(dev_slurm, pul_home, capsys):
    code = main(
        [
            "submit",
            "bd",
            "--profile",
            "dev",
            "profile.gpus_per_node=3",
            f"profile.storage={pul_home / 'cluster'}",
            "--data",
            "x",
            "--run-dir",
            "y",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "the scheduler refused the job" in err
    assert "Requested node configuration is not available" in err


def test_pul_jobs_cancel_cancels(dev_slurm, pul_home, capsys):
    clips = tiny_clips(pul_home / "data")
    job = _submit(
        capsys,
        "bd",
        "--profile",
        "dev",
        "profile.nodes=1",
        f"profile.storage={pul_home / 'cluster'}",
        "--data",
        str(clips),
        "--run-dir",
        str(pul_home / "runs" / "long"),
        f"tracking_uri=sqlite:///{pul_home}/mlflow.db",
        "train.steps=100000",
        *BD,
    )
    _wait_state(job, {"RUNNING"}, timeout=120)
    assert main(["jobs", "cancel", job]) == 0
    assert f"cancelled job {job}" in capsys.readouterr().out
    final = _wait_state(job, {"CANCELLED"}, timeout=120)
    assert final == "CANCELLED"
    assert main(["jobs", "status", job]) == 0
    assert "CANCELLED" in capsys.readouterr().out


def test_a_preempted_job_requeues_itself_and_resumes(dev_slurm, pul_home, capsys):
    """A high-QOS job preempts ours: Slurm sends submitit's signal (the job requeues itself
    through `checkpoint()`), then SIGTERM; the requeued run resumes from the checkpoint."""
    job, run_dir, db = _resumable_run(pul_home, capsys)
    # every CPU of both nodes: the scheduler can only make room by preempting our job
    high = dev_slurm.sbatch("--qos=high", "-N2", "-c2", "-o", "/dev/null", "--wrap", "true")
    assert dev_slurm.wait_finished(high, timeout=120) == "COMPLETED"
    final = _wait_state(job, {"COMPLETED"}, timeout=420)
    log = find(job).stdout.read_text()
    assert final == "COMPLETED", log[-3000:]
    # REQUEUED, not PREEMPTED: on the signal the job requeued itself before Slurm's SIGTERM
    assert dev_slurm.sacct_state(job, duplicates=True)[0] == "REQUEUED"
    assert "(restart 1)" in log

    _assert_resumed_from_a_checkpoint(db, run_dir)
