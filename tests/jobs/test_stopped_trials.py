"""A trial that Tune stops gives its CPUs back, even on a host where an old `ray start`
left its address behind.

Ray Train's placement-group cleaner finds the cluster through the state API; in a worker,
that guesses the cluster from /tmp/ray/ray_current_cluster, which the last `ray start` on
the host wrote (this machine's still names a cluster long gone). With the guess wrong, the
cleaner gave up and each stopped trial kept its placement group: an ASHA sweep on a small
cluster then waited forever for CPUs (a lost CI run). `jobs.runtime.start_local_ray`
names the cluster's dashboard for its processes instead.

The test runs in a child process with a Ray temp dir of its own (RAY_TMPDIR), holding a
stale address file, so that the guess is wrong on any machine, and the real
/tmp/ray is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Two trials, each a Ray Train run of one half-CPU worker that reports every 0.3 s; Tune
# stops each after its second report, as ASHA stops a trial that falls behind.
SWEEP = """
import json, sys, time
import ray
from ray import tune
import ray.train
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from jobs.runtime import start_local_ray
from tests.helpers import wait_ray_idle

def loop(config):
    for step in range(200):
        ray.train.report({"step": step})
        time.sleep(0.3)

def trial(config, storage):
    name = "run-" + tune.get_context().get_trial_id()
    TorchTrainer(
        loop,
        scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name=name, storage_path=storage, callbacks=[TuneReportCallback()]),
    ).fit()

start_local_ray(num_cpus=2, log_to_driver=False)
trainable = tune.with_parameters(trial, storage=sys.argv[1])
results = tune.Tuner(
    tune.with_resources(trainable, {"cpu": 0, "memory": 1}),
    param_space={"x": tune.grid_search([1, 2])},
    run_config=tune.RunConfig(storage_path=sys.argv[1], stop={"training_iteration": 2}),
).fit()
wait_ray_idle(ray, 60)  # the cleaner checks every second: far less without a leak
states = [pg["state"] for pg in ray.util.placement_group_table().values()]
held = [state for state in states if state != "REMOVED"]
cpus = ray.available_resources().get("CPU", 0)
reports = [result.metrics.get("training_iteration", 0) for result in results]
print("RESULT", json.dumps({
    "errors": len(results.errors), "reports": reports, "groups": len(states),
    "held": len(held), "cpus": cpus,
}))
"""


def test_trials_that_tune_stops_give_their_placement_groups_back(tmp_path):
    # short: Ray's socket paths under it must fit in 107 characters
    ray_tmp = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    # a cluster that is gone (port 9 is discard, nobody's GCS)
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:9")
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", SWEEP, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["errors"] == 0, result
    assert result["reports"] == [2, 2], result  # both trained, then were stopped
    assert result["groups"] == 4, result  # a trial's own and its run's workers'
    assert result["held"] == 0, result
    assert result["cpus"] == 2.0, result
