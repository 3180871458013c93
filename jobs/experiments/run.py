"""An experiment end to end: inputs prepared (or reused), its sweep run (or resumed), its
report written to the output folder and logged to the sweep's MLflow run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

from mlflow import MlflowClient

from jobs.errors import JobError
from jobs.experiments import ahm_vs_rss, noise_robustness, supervised_gap
from jobs.experiments.config import ExperimentConfig
from jobs.experiments.inputs import pinned_uri, prepare
from jobs.sweep.run import sweep

EXPERIMENTS: dict[str, ModuleType] = {
    module.NAME: module for module in (noise_robustness, ahm_vs_rss, supervised_gap)
}
"""Each module has NAME, CLAIM, sweep_config(cfg, inputs) and report(rows, cfg, uri)."""
REPORT, PLOT = "report.md", "report.png"


@dataclasses.dataclass
class ExperimentOutcome:
    report: Path
    """The Markdown report (its PNG beside it)."""
    sweep_folder: Path
    """The sweep's folder (every trial's run folder, the sweep's own ranking)."""
    run_id: str
    """The sweep's MLflow run, holding the report."""


def run_experiment(
    name: str, cfg: ExperimentConfig, work: str | Path, out: str | Path | None = None
) -> ExperimentOutcome:
    """Run (or resume) experiment `name` in `work`; its report goes to `out` (default
    WORK/NAME)."""
    if name not in EXPERIMENTS:
        raise JobError(f"no experiment named {name!r}: choose one of {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    work = Path(work).resolve()
    cfg = pinned_uri(cfg, work)
    inputs = prepare(cfg, work, ["pul", "experiment", name])
    try:
        sweep_cfg = experiment.sweep_config(cfg, inputs)
    except ValueError as err:
        raise JobError(f"{name}: {err}") from None
    outcome = sweep(sweep_cfg, work / name)
    text, figure = experiment.report(outcome.trials, cfg, inputs.tracking_uri)
    folder = Path(out).resolve() if out else work / name
    folder.mkdir(parents=True, exist_ok=True)
    report, plot = folder / REPORT, folder / PLOT
    figure.savefig(plot)
    report.write_text(text + f"\n![{name}]({PLOT})\n\nSweep: {outcome.folder}\n")
    client = MlflowClient(inputs.tracking_uri)
    for path in (report, plot):
        client.log_artifact(outcome.run_id, str(path), "experiment")
    client.set_tag(outcome.run_id, "pul.experiment", name)
    return ExperimentOutcome(report, outcome.folder, outcome.run_id)
