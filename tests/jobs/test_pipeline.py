"""The pipeline job on tiny data: resume after a kill without rerunning finished steps, one
parent MLflow run with nested stage runs, and bad input refused before any work starts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from jobs.pack import pack
from jobs.pipeline.steps import RECORD, run_step, step
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from tests.helpers import (
    TINY_BENCH,
    TINY_MINING,
    TINY_PACK,
    TINY_SYNTH,
    TINY_TRAIN,
    TWO_SMALL_WORKERS,
    pul_command,
    pul_killed_when,
    run_cli,
)

TINY = {
    "data": {"synth": TINY_SYNTH},
    "benchmark": {"synth": TINY_BENCH},
    "pack": TINY_PACK,
    "bd": {"model": {"width": 0.25}, "pool": 16, "train": {**TINY_TRAIN, **TWO_SMALL_WORKERS}},
    "mine": {"workers": 1, "mining": TINY_MINING},
    "tc": {
        "model": {"width": 0.25},
        "pool": 16,
        "gap_start": 2,
        "gap_end": 8,
        "train": {**TINY_TRAIN, **TWO_SMALL_WORKERS, "steps": 40},
    },
    "eval_workers": 1,
}


def _config(tmp_path: Path, **changes) -> Path:
    data = {**TINY, **changes}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(work: Path) -> dict[str, float]:
    """Step folder -> modification time of its STEP.json (rewritten if the step reran)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in work.glob(f"*/{RECORD}")}


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1800)  # two pipelines; under a loaded machine stage 3 alone took 5 min
def test_a_pipeline_killed_in_stage_3_continues_without_rerunning_finished_steps(tmp_path):
    work = tmp_path / "work"
    argv = ["pipeline", "--config", str(_config(tmp_path)), "--work", str(work)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # Ray Train writes this snapshot once it has registered a checkpoint: only then can a
    # rerun resume from it (a checkpoint folder alone may be one it never took)
    pul_killed_when(
        argv,
        lambda: bool(list(work.glob("tc-*/ray/train/checkpoint_manager_snapshot.json"))),
        900,
        env=env,
        log=tmp_path / "first.log",
    )
    finished = _records(work)
    assert sorted(name.split("-")[0] for name in finished) == ["bd", "clips", "pairs", "synth"]
    assert not list(work.glob("tc-*/model.pt"))

    rerun = subprocess.run(pul_command(*argv), env=env, capture_output=True, text=True, timeout=800)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    out = rerun.stdout
    assert out.count("done before, skipped") == 4, out
    after = _records(work)
    assert {name: after[name] for name in finished} == finished  # not one of them rewritten
    new_steps = sorted(n.split("-")[0] for n in set(after) - set(finished))
    assert new_steps == ["eval", "register", "synth", "tc"]

    summary = json.loads((work / "pipeline.json").read_text())
    client = MlflowClient(summary["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("pul").experiment_id], max_results=100)
    by_stage: dict[str, list] = {}
    for run in runs:
        by_stage.setdefault(run.data.tags["pul.stage"], []).append(run)
    assert {k: len(v) for k, v in by_stage.items()} == {
        "pipeline": 1,
        "bd": 1,
        "mine": 1,
        "tc": 1,
        "eval": 1,
    }
    parent = by_stage["pipeline"][0].info.run_id
    assert parent == summary["parent_run"]
    for stage in ("bd", "mine", "tc", "eval"):
        run = by_stage[stage][0]
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.info.status == "FINISHED"
    tc_run = by_stage["tc"][0].info.run_id
    resumed = client.get_metric_history(tc_run, "resumed_at_step")
    assert resumed and resumed[0].value >= 4 and resumed[0].value % 4 == 0
    assert max(m.step for m in client.get_metric_history(tc_run, "loss")) == 39
    assert client.get_run(parent).info.status == "FINISHED"
    scores = summary["eval"]["scores"]
    assert set(scores) == {"alexpul", "stage1-bd", "untrained", "still"}
    assert all(0.0 <= s["auc"] <= 1.0 for s in scores.values())

    # registered from the parent run, with the scores and the lineage of its data
    version = client.get_model_version_by_alias("pul-alexnet", "candidate")
    assert version.run_id == parent and summary["registered"]["version"] == str(version.version)
    tags = version.tags
    assert float(tags["pul.metric.auc"]) == pytest.approx(scores["alexpul"]["auc"])
    assert tags["pul.data_lineage"] == summary["clips"]["lineage"]
    assert tags["pul.pairs_lineage"] == summary["pairs"]["lineage"]
    assert tags["pul.train_run"] == tc_run


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_second_round_mines_with_the_round_1_tracker_and_trains_from_it(tmp_path, capsys):
    one_worker = {**TINY_TRAIN, "workers": 1, "log_every": 1, "max_failures": 0}
    config = _config(
        tmp_path,
        rounds=2,
        round_steps=4,
        register=False,
        bd={**TINY["bd"], "train": one_worker},
        tc={**TINY["tc"], "train": {**one_worker, "steps": 8}},
    )
    work = tmp_path / "work"
    code, out, err = run_cli(capsys, "pipeline", "--config", str(config), "--work", str(work))
    assert code == 0, err[-3000:]
    steps = {
        p.parent.name.rsplit("-", 1)[0]: json.loads(p.read_text()) for p in work.glob("*/STEP.json")
    }
    assert {"pairs", "tc", "pairs-round2", "tc-round2"} <= set(steps)
    summary = json.loads((work / "pipeline.json").read_text())
    first, second = summary["rounds"]
    # round 2 mined with the round-1 tracker, and trained from it
    mined = json.loads((Path(steps["pairs-round2"]["path"]) / "manifest.json").read_text())
    assert mined["config"]["model"] == first["model"]
    tc2_config = yaml.safe_load((Path(second["model"]).parent / "config.yaml").read_text())
    assert tc2_config["init"] == first["model"]
    assert tc2_config["train"]["steps"] == 4  # round_steps; round 1 trained tc's 8
    assert summary["tc"]["model"] == second["model"] != first["model"]
    # each round's tracker is scored: the last under the tracker's name
    scores = summary["eval"]["scores"]
    assert set(scores) == {"alexpul-round1", "alexpul", "stage1-bd", "untrained", "still"}
    assert (
        first["auc"] == scores["alexpul-round1"]["auc"]
        and second["auc"] == scores["alexpul"]["auc"]
    )
    assert "round 1:" in out and "round 2:" in out and "alexpul-round1" in out
    # each round has its own nested mine and tc runs, tagged with the round
    client = MlflowClient(summary["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("pul").experiment_id])
    rounds = sorted(
        (r.data.tags["pul.stage"], r.data.tags["pul.round"])
        for r in runs
        if "pul.round" in r.data.tags
    )
    assert rounds == [("mine", "1"), ("mine", "2"), ("tc", "1"), ("tc", "2")]
    assert all(
        r.data.tags["mlflow.parentRunId"] == summary["parent_run"]
        for r in runs
        if r.data.tags["pul.stage"] != "pipeline"
    )

    # run again: every step is done, none reruns
    code, out, _ = run_cli(capsys, "pipeline", "--config", str(config), "--work", str(work))
    assert code == 0 and out.count("done before, skipped") == summary["steps"]["total"]


def test_a_step_runs_once_and_a_changed_input_gets_a_new_folder(tmp_path):
    calls = []

    def body(folder: Path) -> dict:
        calls.append(folder)
        (folder / "out.txt").write_text("x")
        return {"answer": 42}

    first = step(tmp_path, "bd", clips="aaa", config={"steps": 5})
    assert run_step(first, body, print)["answer"] == 42
    again = step(tmp_path, "bd", clips="aaa", config={"steps": 5})
    assert again.folder == first.folder
    assert run_step(again, body, print)["answer"] == 42
    assert len(calls) == 1
    changed = step(tmp_path, "bd", clips="aaa", config={"steps": 6})
    assert changed.folder != first.folder
    run_step(changed, body, print)
    assert len(calls) == 2 and (first.folder / "out.txt").exists()  # the old output is kept


def test_an_unreachable_tracking_server_fails_before_any_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port
    work = tmp_path / "work"
    code, _, err = run_cli(
        capsys, "pipeline", "--config", str(_config(tmp_path)), "--work", str(work)
    )
    assert code == 2 and err.count("\n") == 1
    assert "MLflow tracking server at http://127.0.0.1:9 is unreachable" in err
    assert not list(work.glob("*-*"))  # no step started


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"benchmark": {}}, "no benchmark: set benchmark.root"),
        ({"data": {"footage": ["nope"]}}, "unknown footage ['nope']"),
        ({"data": {"clips": "/no/such/set"}}, "no such path: /no/such/set"),
        ({"data": {}}, "no training data"),
    ],
)
def test_an_impossible_pipeline_config_is_one_line(tmp_path, capsys, changes, message):
    work = tmp_path / "work"
    config = str(_config(tmp_path, **changes))
    code, _, err = run_cli(capsys, "pipeline", "--config", config, "--work", str(work))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not work.exists()


def test_reused_shards_that_fail_verification_stop_the_pipeline(tmp_path, capsys):
    videos = tmp_path / "videos"
    generate(SynthConfig(videos=2, frames=12, width=160, height=120, seed=1), videos, False)
    clips = tmp_path / "clips"
    pack(PackConfig(sources=[str(videos)], workers=1, clip_len=12), clips, ["t"], False)
    shard = sorted(clips.glob("clips-*.tar"))[0]
    blob = bytearray(shard.read_bytes())
    blob[2000] ^= 0xFF
    shard.write_bytes(bytes(blob))
    work = tmp_path / "work"
    config = _config(tmp_path, data={"clips": str(clips)})
    env_uri = f"sqlite:///{tmp_path}/mlflow.db"
    capsys.readouterr()  # the fixture's own output (synth, pack)
    code, _, err = run_cli(
        capsys, "pipeline", "--config", str(config), "--work", str(work), f"tracking_uri={env_uri}"
    )
    err = err.strip().splitlines()
    assert code == 2 and err[-1].startswith("pul: error:"), err
    assert f"shards failed verification: {shard.name}" in err[-1]
    assert not list(work.glob("bd-*"))


def test_the_summary_says_each_rounds_pairs_and_score():
    from jobs.pipeline.summary import format_summary

    scores = {
        "alexpul": {"auc": 0.52, "precision_20": 0.7},
        "untrained": {"auc": 0.3, "precision_20": 0.4},
    }
    rounds = [
        {
            "round": 1,
            "pairs": 200,
            "clips_with_pairs": 40,
            "pairs_on_target": 50,
            "auc": 0.45,
            "precision_20": 0.6,
        },
        {
            "round": 2,
            "pairs": 300,
            "clips_with_pairs": 60,
            "pairs_on_target": 120,
            "auc": 0.52,
            "precision_20": 0.7,
        },
    ]
    summary = {
        "seconds": 60.0, "work": "w", "tracking_uri": "sqlite:///x.db",
        "eval": {"tracker": "alexpul", "benchmark": "b", "table": "|t|", "scores": scores},
        "clips": {"clips": 100, "lineage": "abc"}, "pairs": {"pairs": 300, "pairs_on_target": 120},
        "tc": {"model": "m.pt"}, "rounds": rounds,
    }  # fmt: skip
    text = format_summary(summary)
    assert "100 clips -> 300 mined pairs, 120 on a synthetic target (40%)" in text
    assert "round 1: 200 pairs from 40 clips, 50 on a synthetic target (25%) -> AUC 0.450" in text
    assert "round 2: 300 pairs from 60 clips, 120 on a synthetic target (40%) -> AUC 0.520" in text
    summary["rounds"] = rounds[1:]  # one round: the table says it all
    assert "round 2:" not in format_summary(summary)
