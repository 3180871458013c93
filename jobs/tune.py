"""The sweep job: stage 3 trained over a grid of noise levels and batch sizes, on Ray Tune.

Ray Train V2's pattern: every Tune trial is a plain function that builds and fits its own
TorchTrainer (through `train_stage`, so each trial is an ordinary, resumable training run
with its own MLflow run, nested under the sweep's), then scores the model on a labeled
benchmark and reports the AUC. Rerunning the same sweep resumes it: finished trials are
found done, an interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jobs.config import save_config, to_dict
from jobs.errors import JobError
from jobs.evaluation.evaluate import EvalRequest, evaluate
from jobs.pipeline.run import PARENT
from jobs.pipeline.steps import step_key
from jobs.tracking.runs import code_version, log_params, resolve_uri, tracked_run
from jobs.train.job import train_stage
from jobs.train.tc import TCConfig

log = logging.getLogger(__name__)
RESULTS = "results.md"


@dataclass
class SweepConfig:
    experiment: str = "pul"
    """MLflow experiment of the sweep's run and its trials' runs."""
    tracking_uri: str = ""
    """MLflow tracking URI; empty: $MLFLOW_TRACKING_URI, else SQLite under the work folder."""
    data: str = ""
    """Pair shards (from `pul mine`) every trial trains on."""
    init: str = ""
    """The stage-1 model every trial starts from."""
    benchmark: str = ""
    """Labeled benchmark folder each trial's tracker is scored on (AUC)."""
    benchmark_format: Literal["otb", "got10k", "lasot", "vot"] = "otb"
    """Layout of `benchmark`."""
    sequences: list[str] = field(default_factory=list)
    """Only these benchmark sequences (default: all)."""
    noise: list[float | Literal["auto"]] = field(default_factory=lambda: ["auto", 0.0, 8.0])
    """Values of tc.loss.noise to try (search-crop pixels, or 'auto')."""
    batch_size: list[int] = field(default_factory=lambda: [8, 16])
    """Values of tc.train.batch_size to try."""
    tc: TCConfig = field(default_factory=TCConfig)
    """Everything else of the trials (their data, init, noise and batch size come from here)."""
    max_concurrent: int = 1
    """Trials running at once (each runs tc.train.workers Ray Train workers)."""

    def __post_init__(self) -> None:
        if not self.noise or not self.batch_size:
            raise ValueError("noise and batch_size need at least one value each")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {self.max_concurrent}")


def grid(cfg: SweepConfig) -> list[dict[str, Any]]:
    return [{"noise": n, "batch_size": b} for n, b in itertools.product(cfg.noise, cfg.batch_size)]


def trial_name(point: dict[str, Any]) -> str:
    return f"noise-{point['noise']}_batch-{point['batch_size']}"


def sweep(cfg: SweepConfig, work: str | Path) -> list[dict[str, Any]]:
    """Run (or resume) the sweep in `work`; returns the trials, best AUC first."""
    _check(cfg)
    cfg = dataclasses.replace(
        cfg,
        data=str(Path(cfg.data).resolve()),
        init=str(Path(cfg.init).resolve()),
        benchmark=str(Path(cfg.benchmark).resolve()),
    )
    code = code_version()
    key = step_key(config=to_dict(cfg), code=code)[:10]
    folder = Path(work).resolve() / f"tune-{key}"
    uri = resolve_uri(cfg.tracking_uri, folder.parent)
    with tracked_run(uri, cfg.experiment, folder, "tune", {"pul.stage": "tune"}) as opened:
        client, parent = opened  # FINISHED, FAILED or KILLED with this block
        log_params(client, parent, to_dict(cfg))
        client.log_artifact(parent, str(save_config(cfg, folder / "config.yaml")))
        context = {"sweep": cfg, "folder": str(folder), "uri": uri, "parent": parent, "code": code}
        trials = _run_sweep(cfg, folder, context)
        _publish(trials, folder, client, parent)
    return trials


def _run_sweep(cfg: SweepConfig, folder: Path, context: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trial of the sweep on Ray Tune (resuming an interrupted sweep)."""
    from ray import tune

    from jobs.runtime import connect_ray

    connect_ray()
    trainable = tune.with_parameters(run_trial, context=context)
    # the trial itself only waits for its trainer; the trainer's workers hold the CPUs
    trainable = tune.with_resources(trainable, {"cpu": 0, "memory": 1})
    space = {"point": tune.grid_search(grid(cfg))}
    storage = str(folder / "ray")
    tune_config = tune.TuneConfig(max_concurrent_trials=cfg.max_concurrent)
    if tune.Tuner.can_restore(f"{storage}/sweep"):
        tuner = tune.Tuner.restore(
            f"{storage}/sweep", trainable=trainable, resume_errored=True, param_space=space
        )
    else:
        run_config = tune.RunConfig(name="sweep", storage_path=storage, verbose=1)
        tuner = tune.Tuner(
            trainable, param_space=space, tune_config=tune_config, run_config=run_config
        )
    return _collect(tuner.fit(), cfg)


def _check(cfg: SweepConfig) -> None:
    for name, path in (("data", cfg.data), ("init", cfg.init), ("benchmark", cfg.benchmark)):
        if not path:
            raise JobError(f"the sweep needs {name}=PATH")
        if not Path(path).exists():
            raise JobError(f"no such path: {path} ({name})")


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> None:
    """One trial: train stage 3 at this grid point, score it, report to Tune."""
    from ray import tune

    sweep_cfg: SweepConfig = context["sweep"]
    point = config["point"]
    base = sweep_cfg.tc
    cfg = dataclasses.replace(
        base,
        data=sweep_cfg.data,
        init=sweep_cfg.init,
        experiment=sweep_cfg.experiment,
        tracking_uri=context["uri"],
        loss=dataclasses.replace(base.loss, noise=point["noise"]),
        train=dataclasses.replace(base.train, batch_size=point["batch_size"]),
    )
    run_dir = Path(context["folder"]) / trial_name(point)
    tags = {PARENT: context["parent"], "pul.code_version": context["code"]}
    model = train_stage("tc", cfg, run_dir, tags={**tags, "pul.trial": trial_name(point)})
    request = EvalRequest(
        benchmark=sweep_cfg.benchmark_format,
        root=sweep_cfg.benchmark,
        out=str(run_dir / "eval"),
        models={"trial": str(model)},
        sequences=list(sweep_cfg.sequences),
        workers=1,
    )
    score = evaluate(request)["trial"]
    tune.report(
        {
            "auc": float(score.auc),
            "precision_20": float(score.precision_20),
            "run_dir": str(run_dir),
            "run_id": (run_dir / "DONE").read_text().strip(),
        }
    )


def _collect(grid_result: Any, cfg: SweepConfig) -> list[dict[str, Any]]:
    trials, failed = [], []
    for result in grid_result:
        point = (result.config or {}).get("point")
        if result.error is not None or not result.metrics or "auc" not in result.metrics:
            failed.append(f"{trial_name(point) if point else '?'}: {result.error}")
            continue
        m = result.metrics
        trials.append({**point, **{k: m[k] for k in ("auc", "precision_20", "run_dir", "run_id")}})
    if failed:
        raise JobError(f"{len(failed)} of {len(grid(cfg))} trials failed: {failed[0]}")
    return sorted(trials, key=lambda t: (-t["auc"], trial_name(t)))


def _publish(trials: list[dict[str, Any]], folder: Path, client: Any, parent: str) -> None:
    lines = ["| noise | batch size | AUC | P@20 | run |", "|---|---:|---:|---:|---|"]
    for t in trials:
        lines.append(
            f"| {t['noise']} | {t['batch_size']} | {t['auc']:.3f} | {t['precision_20']:.3f} "
            f"| {t['run_id']} |"
        )
    table = folder / RESULTS
    table.write_text("\n".join(lines) + "\n")
    (folder / "trials.json").write_text(json.dumps(trials, indent=2))
    best = trials[0]
    client.log_metric(parent, "best_auc", best["auc"])
    client.set_tag(parent, "pul.best_trial", trial_name(best))
    client.log_artifact(parent, str(table))
