"""Failures in the middle of real Ray work: a training worker process and a mining task are
SIGKILLed while they run; the job recovers and its result shows nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import ray
from mlflow import MlflowClient
from ray.util.state import list_actors, list_tasks

from jobs.config import from_dict
from jobs.mine import MineJobConfig, mine
from jobs.pack import pack
from jobs.train.job import train_supervised
from jobs.train.supervised import SupervisedConfig
from pul.models import ModelConfig, build_model
from pul.weights import save_weights
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.pairs import read_records
from shards.synth import SynthConfig, generate
from tests.shards.clip_fixtures import make_otb_set


class Killer(threading.Thread):
    """Waits until `ready()` and `find()` names a process, then SIGKILLs it once."""

    def __init__(self, ready: Callable[[], bool], find: Callable[[], int | None]) -> None:
        super().__init__(daemon=True)
        self.ready, self.find = ready, find
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.ready():
                try:
                    pid = self.find()
                except Exception:  # the state API is briefly unavailable under load: retry
                    pid = None
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    self.killed = pid
                    return
            time.sleep(0.1)


def _gcs() -> str:
    """This test's own cluster (other Ray clusters may run on the machine)."""
    return ray.get_runtime_context().gcs_address


def _alive_train_worker() -> int | None:
    actors = list_actors(
        address=_gcs(),
        filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
        raise_on_missing_output=False,
    )
    return actors[-1].pid if actors else None


@pytest.mark.slow
@pytest.mark.ray
def test_a_training_worker_killed_mid_run_is_replaced_and_resumes_from_the_checkpoint(
    tmp_path, ray_local
):
    src = make_otb_set(tmp_path / "otb", videos=3, frames=16, size=(160, 120))
    pack(PackConfig(sources=[str(src)], workers=1, clip_len=8), tmp_path / "clips", ["t"], False)
    run_dir = tmp_path / "run"
    cfg = from_dict(
        SupervisedConfig,
        {
            "data": str(tmp_path / "clips"),
            "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "model": {"width": 0.25},
            "pairs": {"max_gap": 4},
            "shuffle": 4,
            "train": {
                "steps": 200,
                "batch_size": 2,
                "checkpoint_every": 10,
                "log_every": 2,
                "workers": 2,
                "cpus_per_worker": 0.5,
                "max_failures": 2,
            },
        },
    )
    checkpoints = run_dir / "ray" / "train"
    # Ray Train writes this snapshot once it has registered a checkpoint: a worker group
    # restarted after that resumes from it
    snapshot = checkpoints / "checkpoint_manager_snapshot.json"

    def ready() -> bool:
        return snapshot.exists()

    killer = Killer(ready, _alive_train_worker)
    killer.start()
    try:
        model = train_supervised(cfg, run_dir)
    finally:
        killer.stop.set()
    assert killer.killed, "no worker was killed: the test did not test anything"
    assert model.is_file()
    run_id = (run_dir / "DONE").read_text().strip()
    client = MlflowClient(cfg.tracking_uri)
    resumed = client.get_metric_history(run_id, "resumed_at_step")
    assert len(resumed) == 1 and resumed[0].value >= 10 and resumed[0].value % 10 == 0
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert max(steps) == 199
    # the steps after the restored checkpoint were trained after the restart
    assert set(range(int(resumed[0].value), 200)) <= set(steps)
    assert client.get_run(run_id).info.status == "FINISHED"


def _running_mining_task() -> int | None:
    tasks = list_tasks(
        address=_gcs(),
        filters=[("func_or_class_name", "=", "mine_shard"), ("state", "=", "RUNNING")],
        raise_on_missing_output=False,
    )
    return next((t.worker_pid for t in tasks if t.worker_pid), None)


@pytest.mark.slow
@pytest.mark.ray
def test_a_mining_task_killed_mid_shard_is_retried_without_lost_or_duplicate_pairs(
    tmp_path, ray_local
):
    videos = tmp_path / "videos"
    generate(SynthConfig(videos=4, frames=32, width=160, height=120, seed=7), videos, False)
    clips = tmp_path / "clips"
    # one video per shard: four mining tasks of a few seconds each
    pack(
        PackConfig(sources=[str(videos)], workers=1, clip_len=32, shard_mb=0.01),
        clips,
        ["t"],
        False,
    )
    assert len(read_manifest(clips).shards) == 4
    model = tmp_path / "bd.pt"
    save_weights(build_model(ModelConfig(width=0.25)), ModelConfig(width=0.25), model)
    settings = {
        "data": str(clips),
        "model": str(model),
        "mining": {"proposer": "random", "seeds_per_clip": 24, "min_confidence": 0.3},
    }
    reference = mine(
        from_dict(MineJobConfig, {**settings, "workers": 1}), tmp_path / "ref", ["t"], False
    )

    killer = Killer(lambda: True, _running_mining_task)
    killer.start()
    try:
        mined = mine(
            from_dict(MineJobConfig, {**settings, "workers": 2}), tmp_path / "pairs", ["t"], False
        )
    finally:
        killer.stop.set()
    assert killer.killed, "no mining task was killed: the test did not test anything"
    retried = list_tasks(
        address=_gcs(),
        filters=[("func_or_class_name", "=", "mine_shard")],
        raise_on_missing_output=False,
        detail=True,
    )
    assert max(t.attempt_number for t in retried) >= 1  # Ray ran the killed task again

    assert mined.extra["pairs"] == reference.extra["pairs"] > 0
    assert [(s.name, s.samples, s.sha256) for s in mined.shards] == [
        (s.name, s.samples, s.sha256) for s in reference.shards
    ]
    keys = [
        (r.clip, r.seed_index, r.seed_frame, r.target_frame)
        for shard in sorted((tmp_path / "pairs").glob("*.tar"))
        for r in read_records(shard)
    ]
    assert len(keys) == len(set(keys)) == mined.extra["pairs"]
    assert not (tmp_path / "pairs" / ".staging").exists()
