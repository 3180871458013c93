"""`pul tune`: real Ray Tune sweeps of stage 3 (each trial a Ray Train run nested in the
sweep's MLflow run), scored on a benchmark and ranked. A grid sweep killed in its second
trial and rerun keeps the finished trial as it is and continues the interrupted one; an
Optuna sweep with ASHA stops trials early on their validation AUC and registers the best;
and bad input is one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
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
    wait_ray_idle,
)

ROOT = Path(__file__).resolve().parents[2]
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
        "space.loss.noise=[0,auto]",
        "space.train.batch_size=[4]",
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
        return sorted(work.glob("tune-*/trial-*"))

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
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2 and all("| finished |" in row for row in rows)
    aucs = [float(row.split("|")[8]) for row in rows]  # rank, trial, noise, batch, status, ...
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


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1200)  # minutes on an idle 2-core machine; CI machines can be slower
def test_an_optuna_sweep_with_asha_stops_trials_early_and_registers_the_best(
    tmp_path, ray_local, capsys
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    pairs, init = _inputs(tmp_path)
    bench = tmp_path / "bench"
    generate(SynthConfig(**TINY_BENCH, seed=4), bench, False)
    work = tmp_path / "sweep"
    # 4 Optuna trials of 12 steps, validated every 2 on 2 x 10 frames; ASHA's rungs at
    # steps 2, 4 and 8; two one-CPU trials at once, as many as the 2 CPUs hold.
    code, out, err = run_cli(
        capsys, "tune", "--config", str(ROOT / "configs/sweeps/tiny-cpu.yaml"),
        "--data", str(pairs), "--init", str(init), "--benchmark", str(bench),
        "--work", str(work), f"tracking_uri={uri}",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    folder = next(work.glob("tune-*"))
    trials = json.loads((folder / "trials.json").read_text())
    assert len(trials) == 4 and {t["status"] for t in trials} <= {"finished", "stopped"}
    stopped = [t for t in trials if t["status"] == "stopped"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert stopped and finished, trials  # ASHA stopped at least one, and one trained through
    assert all(t["step"] in (2, 4, 8) and t["val_auc"] is not None for t in stopped)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("pul").experiment_id])
    sweep_run = next(r for r in runs if r.data.tags.get("pul.stage") == "tune")
    trial_runs = {r.info.run_id: r for r in runs if r.data.tags.get("pul.stage") == "tc"}
    assert len(trial_runs) == 4
    assert all(
        r.data.tags["mlflow.parentRunId"] == sweep_run.info.run_id for r in trial_runs.values()
    )
    for t in stopped:  # the workers really stopped: their training never reached the end
        last = max(m.step for m in client.get_metric_history(t["run_id"], "loss"))
        assert t["step"] - 1 <= last < 11, (t, last)  # (0-based steps: 11 is the last)
        assert trial_runs[t["run_id"]].info.status == "KILLED"
        assert trial_runs[t["run_id"]].data.tags["pul.stopped_early"].startswith("at step")
    for t in finished:
        assert max(m.step for m in client.get_metric_history(t["run_id"], "loss")) == 11
        vals = client.get_metric_history(t["run_id"], "val_auc")
        assert sorted(m.step for m in vals) == [1, 3, 5, 7, 9, 11]  # every 2 steps

    best = max(finished, key=lambda t: t["auc"])
    assert trials[0]["trial_id"] == best["trial_id"]  # ranked by the benchmark AUC
    version = client.get_model_version_by_alias("pul-alexnet", "candidate")
    assert version.tags["pul.sweep_run"] == sweep_run.info.run_id
    assert version.tags["pul.train_run"] == best["run_id"]
    assert float(version.tags["pul.metric.auc"]) == pytest.approx(best["auc"])
    assert sweep_run.data.tags["pul.best_run"] == best["run_id"]

    table = (folder / "results.md").read_text()
    assert table.count("\n") == 6 and table.count("stopped early at step") == len(stopped)
    assert "| loss.noise | train.batch_size | train.lr | loss.kind | contrastive_weight |" in table
    image = plt.imread(folder / "ranking.png")
    assert image.shape[1] > 5 * image.shape[0] // 2  # five panels side by side
    assert (folder / "ranking.png").stat().st_size > 20_000 and image[..., :3].std() > 0.05
    logged = {a.path for a in client.list_artifacts(sweep_run.info.run_id)}
    assert {"results.md", "ranking.png", "trials.json"} <= logged
    assert "registered pul-alexnet version 1 (alias candidate)" in out
    # the stopped trials gave their CPUs back (the cleaner that test_stopped_trials.py
    # checks): while they held them, the next trials waited, two CI runs forever
    assert wait_ray_idle(ray_local, 30)


def test_a_sweep_without_its_inputs_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "tune", "--data", str(tmp_path / "nope"), "--init", "x", "--benchmark", "y"
    )
    assert code == 2 and err.count("\n") == 1 and "no such path" in err and "nope" in err


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("searcher=bayes", "searcher: expected one of ['grid', 'random', 'optuna'], got 'bayes'"),
        ("scheduler=hyperband", "scheduler: expected one of ['fifo', 'asha'], got 'hyperband'"),
        ("space.train.lrr=[0.1]", "space.train.lrr: train has no field 'lrr' (did you mean 'lr'?)"),
        ("space.loss={kind: [bce, nope]}", "space.loss.kind: loss.kind: expected one of ['bce',"),
        ("space.train.steps=[4, 8]", "the sweep sets train.steps itself"),
        ("space={}", "the search space is empty"),
        ("space.train.lr={loguniform: [0, 1]}", "loguniform needs low > 0"),
        ("scheduler=asha", "scheduler=asha stops trials on their validation AUC: set "
         "tc.train.validate_every"),
    ],
)  # fmt: skip
def test_a_bad_sweep_config_is_one_line_and_exit_2(capsys, override, expected):
    code, _, err = run_cli(capsys, "tune", override, "--data", "d", "--init", "i")
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_grid_search_refuses_a_range(capsys):
    code, _, err = run_cli(capsys, "tune", "space.train.lr={loguniform: [1e-4, 1e-2]}")
    assert code == 2 and "searcher=grid needs a list of values for every key" in err, err
