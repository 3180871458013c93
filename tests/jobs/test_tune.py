"""`pul tune`: a real Ray Tune sweep of stage 3 (each trial a Ray Train run nested in the
sweep's MLflow run), scored on a benchmark and ranked; killed in its second trial and rerun,
it keeps the finished trial as it is and continues the interrupted one; and its bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from jobs.config import from_dict
from jobs.mine import MineJobConfig, mine
from shards.synth import SynthConfig, generate
from tests.helpers import (
    TINY_BENCH,
    TINY_MINING,
    pul_killed_when,
    run_cli,
    save_untrained,
    tiny_clips,
)

STEPS = 12
"""Steps of each trial: room for the kill between the second trial's first checkpoint (step
2) and its end."""


def _inputs(root: Path) -> tuple[Path, Path]:
    """Tiny clips mined with an untrained network: inputs for a sweep, not a good tracker."""
    clips = tiny_clips(root)
    init = save_untrained(root / "init.pt")
    mining = {"data": str(clips), "model": str(init), "workers": 1, "mining": TINY_MINING}
    mine(from_dict(MineJobConfig, mining), root / "pairs", ["t"], False)
    return root / "pairs", init


def _tune_status(work: Path) -> list[str]:
    """The trial statuses in Tune's own saved record of the sweep (what a restore reads)."""
    states = sorted(work.glob("tune-*/ray/sweep/experiment_state-*.json"))
    try:
        saved = json.loads(states[-1].read_text()) if states else {"trial_data": []}
    except json.JSONDecodeError:  # caught while it is written
        return []
    return [json.loads(trial)["status"] for trial, _ in saved["trial_data"]]


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` -> (modification time, size)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1200)  # two runs of the sweep: about 3 minutes on an idle 2-core machine
def test_a_sweep_killed_mid_trial_keeps_the_finished_trial_and_continues(
    tmp_path, ray_local, capsys
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    pairs, init = _inputs(tmp_path)
    bench = tmp_path / "bench"
    generate(SynthConfig(**TINY_BENCH, seed=4), bench, False)
    work = tmp_path / "sweep"
    argv = [
        "tune",
        "--data", str(pairs),
        "--init", str(init),
        "--benchmark", str(bench),
        "--work", str(work),
        f"tracking_uri={uri}",
        "noise=[0,auto]",
        "batch_size=[4]",
        "tc.model.width=0.25",
        "tc.pool=16",
        "tc.gap_start=2",
        "tc.gap_end=8",
        "tc.train.batch_size=4",
        f"tc.train.steps={STEPS}",
        "tc.train.checkpoint_every=2",
        "tc.train.lr=1e-3",
        "tc.train.lr_end=1e-4",
    ]  # fmt: skip

    def trial_dirs() -> list[Path]:
        return sorted(work.glob("tune-*/noise-*_batch-*"))

    def second_trial_checkpointed() -> bool:
        # Tune has recorded the first trial as finished, and Ray Train has registered a
        # checkpoint of the second (one a rerun can resume from); the second is not done
        running = [d for d in trial_dirs() if not (d / "DONE").exists()]
        return _tune_status(work).count("TERMINATED") == 1 and any(
            (d / "ray" / "train" / "checkpoint_manager_snapshot.json").exists() for d in running
        )

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    pul_killed_when(argv, second_trial_checkpointed, 480, env=env, log=tmp_path / "first.log")
    finished = [d for d in trial_dirs() if (d / "DONE").exists()]
    interrupted = [d for d in trial_dirs() if not (d / "DONE").exists()]
    assert len(finished) == len(interrupted) == 1, "the kill must land in the second trial"
    finished, interrupted = finished[0], interrupted[0]
    kept = _files(finished)
    assert "eval/metrics.json" in kept and "model.pt" in kept

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("pul").experiment_id
    finished_run = client.get_run((finished / "DONE").read_text().strip())

    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err[-3000:]
    rows = [line for line in out.splitlines() if line.startswith(("| 0.0 |", "| auto |"))]
    assert len(rows) == 2
    aucs = [float(row.split("|")[3]) for row in rows]
    assert aucs == sorted(aucs, reverse=True) and all(0.0 <= a <= 1.0 for a in aucs)

    # the finished trial was not run again: not one of its files rewritten, its run as it was
    assert _files(finished) == kept
    again = client.get_run(finished_run.info.run_id)
    assert again.info.end_time == finished_run.info.end_time
    assert again.data.metrics == finished_run.data.metrics
    assert "resumed_at_step" not in again.data.metrics

    runs = client.search_runs([experiment])
    sweep_run = next(r for r in runs if r.data.tags.get("pul.stage") == "tune")
    trials = [r for r in runs if r.data.tags.get("pul.stage") == "tc"]
    assert len(trials) == 2  # one run per trial: the interrupted one continued in its own
    assert all(r.data.tags["mlflow.parentRunId"] == sweep_run.info.run_id for r in trials)
    assert sorted(r.data.params["loss.noise"] for r in trials) == ["0.0", "auto"]
    continued = next(r for r in trials if r.info.run_id != finished_run.info.run_id)
    assert (interrupted / "DONE").read_text().strip() == continued.info.run_id
    assert continued.info.status == "FINISHED"
    resumed = client.get_metric_history(continued.info.run_id, "resumed_at_step")
    assert resumed and resumed[0].value >= 2 and resumed[0].value % 2 == 0  # from a checkpoint
    assert max(m.step for m in client.get_metric_history(continued.info.run_id, "loss")) == (
        STEPS - 1
    )
    assert sweep_run.data.metrics["best_auc"] == pytest.approx(max(aucs), abs=5e-4)  # 3 dp
    results = next(work.glob("tune-*/results.md")).read_text()
    assert results.count("\n") == 4  # header, rule, two trials


def test_a_sweep_without_its_inputs_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "tune", "--data", str(tmp_path / "nope"), "--init", "x", "--benchmark", "y"
    )
    assert code == 2 and err.count("\n") == 1 and "no such path" in err and "nope" in err


def test_an_empty_grid_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "tune", "noise=[]")
    assert code == 2 and "noise and batch_size need at least one value each" in err
