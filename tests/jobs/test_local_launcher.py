"""The training loop without Ray and MLflow: one process, or torchrun's ranks; metrics to a
file; the same checkpoints and resume; non-finite losses caught at the next report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jobs.train.checkpoints import checkpoint_root, complete_checkpoints
from jobs.train.config import TrainConfig, loader_workers
from jobs.train.loading import chunks
from jobs.train.loop import Loader, LossHealth
from jobs.train.metrics_log import MetricLogger, read_metrics
from jobs.train.pair_chunks import PairChunks
from jobs.train.standalone import main
from pul.models import ModelConfig, build_model
from pul.weights import load_weights
from shards.reader import SkipCounter
from tests.shards.damage_fixtures import make_pair_set

ROOT = Path(__file__).resolve().parents[2]
TINY_TC = [
    "model.width=0.25",
    "train.batch_size=4",
    "pool=16",
    "gap_start=2",
    "train.log_every=2",
    "train.checkpoint_every=4",
]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pair_set(tmp_path_factory.mktemp("local") / "pairs", shards=2, per_shard=16)


def standalone(*argv: str, env: dict | None = None, torchrun: int = 0):
    """`python -m jobs.train.standalone ...` (under torchrun with that many ranks)."""
    if torchrun:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}"]
        command = [*launcher, "--master_port=29561", "-m", "jobs.train.standalone", *argv]
    else:
        command = [sys.executable, "-m", "jobs.train.standalone", *argv]
    return subprocess.run(
        command, cwd=ROOT, env=env or os.environ, capture_output=True, text=True, timeout=300
    )


def test_the_standalone_entry_imports_neither_ray_nor_mlflow():
    code = (
        "import sys, jobs.train.standalone, jobs.train.tc, jobs.train.bd\n"
        "heavy = {'ray', 'mlflow', 'submitit'} & {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_stage_3_without_ray_trains_logs_to_a_file_and_resumes_from_its_checkpoint(pairs, tmp_path):
    run = tmp_path / "run"
    argv = ["tc", "--data", str(pairs), "--run-dir", str(run), "train.steps=12", *TINY_TC]
    assert main(argv) == 0
    rows = read_metrics(run)
    steps = [row["step"] for row in rows if "loss" in row]
    assert steps == list(range(12))  # every step once, read from the device at log steps
    torch.manual_seed(0)  # the run's seed: this is the network it started from
    start = build_model(ModelConfig(width=0.25)).state_dict()
    trained = load_weights(run / "model.pt").state_dict()
    assert max((trained[k] - start[k]).abs().max() for k in trained) > 1e-3  # it stepped
    assert [step for step, _ in complete_checkpoints(checkpoint_root(run))] == [8, 12]

    # lose the last checkpoint and the result: the same command resumes from step 8
    shutil.rmtree(complete_checkpoints(checkpoint_root(run))[-1][1])
    (run / "DONE").unlink()
    (run / "model.pt").unlink()
    assert main(argv) == 0
    again = read_metrics(run)
    assert [r["resumed_at_step"] for r in again if "resumed_at_step" in r] == [8]
    logged = [row["step"] for row in again if "loss" in row]
    assert logged == list(range(12))  # steps 8-11 kept their first values, none twice
    assert (run / "model.pt").is_file()


def test_torchrun_runs_two_ddp_ranks_without_ray(pairs, tmp_path):
    run = tmp_path / "run"
    done = standalone(
        "tc", "--data", str(pairs), "--run-dir", str(run), "train.steps=4", *TINY_TC, torchrun=2
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = json.loads((run / "workers.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["pid"] != ranks[1]["pid"]
    assert (run / "model.pt").is_file() and done.stdout.count("model: ") == 1


def test_a_non_finite_loss_stops_the_run_in_one_line(pairs, tmp_path):
    run = tmp_path / "run"
    done = standalone(
        "tc", "--data", str(pairs), "--run-dir", str(run), "train.steps=8", *TINY_TC,
        "train.lr=1e30", "train.lr_end=1e30",
    )  # fmt: skip
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("pul: error: loss became") and "at step" in error
    assert not (run / "model.pt").exists()


def test_loss_health_finds_the_first_non_finite_step_when_asked():
    health = LossHealth(torch.device("cpu"))
    for step, value in enumerate([1.0, 0.5, 0.4]):
        health.watch(torch.tensor(value), step)
    assert health.first_nonfinite() is None
    for step, value in [(3, float("nan")), (4, 1.0), (5, float("inf"))]:
        health.watch(torch.tensor(value), step)
    step, loss = health.first_nonfinite()
    assert step == 3 and loss != loss  # the first bad one (NaN), not the last


def test_metrics_stay_tensors_until_the_flush_reads_them_in_one_go(tmp_path):
    logger = MetricLogger(None, enabled=True, run_dir=tmp_path)
    logger.add(0, {"loss": torch.tensor(0.25), "lr": 0.1})
    logger.add(1, {"loss": torch.tensor(0.125)})
    assert not (tmp_path / "metrics.jsonl").exists()  # nothing read before the flush
    logger.flush()
    assert read_metrics(tmp_path) == [
        {"step": 0, "loss": 0.25, "lr": 0.1},
        {"step": 1, "loss": 0.125},
    ]


def test_a_loader_process_makes_the_same_chunk_as_the_training_process(pairs):
    def first_chunk(workers: int) -> dict:
        limit = torch.tensor([64], dtype=torch.int32).share_memory_()
        dataset = PairChunks(str(pairs), 5, 4, 8, limit, lambda record: 2.0, SkipCounter)
        loader = Loader(workers=workers, prefetch=2, device=torch.device("cpu"))
        return next(chunks(dataset, loader))

    here, there = first_chunk(0), first_chunk(1)
    assert here["z"].shape == (8, 3, 255, 255) and here["x"].shape == (8, 3, 384, 384)
    for key in ("z", "x", "z_box", "x_box", "gap", "sigma"):
        assert torch.equal(here[key], there[key]), key


def test_loader_workers_follow_the_cpus_of_the_node():
    cpus = len(os.sched_getaffinity(0))
    auto = TrainConfig(loader_workers=-1)
    assert loader_workers(auto, 1) == max(0, min(8, cpus - 1))
    assert loader_workers(auto, cpus) == 0  # one rank per CPU: no room for loaders
    assert loader_workers(TrainConfig(loader_workers=3), 4) == 3
