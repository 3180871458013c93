"""After the trials: the ranking (table, PNG, JSON) in the sweep folder and on the sweep's
MLflow run, the runs of trials stopped early closed as such, the best tracker registered."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from jobs.sweep.config import SweepConfig
from jobs.sweep.ranking import PLOT, TABLE, plot, table
from jobs.sweep.results import TrialRow, write_json
from jobs.sweep.space import dimensions
from jobs.sweep.trial import SWEEP_TAG, trial_config
from jobs.train.shared import MODEL_FILE
from jobs.train.stages import CONFIG_FILE
from shards.manifest import read_manifest

log = logging.getLogger(__name__)
REGISTERED = "registered.json"
"""In the sweep folder once its best tracker is registered: a rerun does not register it again."""
STOPPED_TAG = "pul.stopped_early"
"""On the MLflow run of a trial the scheduler stopped: at which step, on which value."""


def publish(
    rows: list[TrialRow], cfg: SweepConfig, folder: Path, client: Any, parent: str, uri: str
) -> dict[str, str] | None:
    """Write and log the ranking, close stopped trials' runs, register the best tracker
    (when cfg.register); returns the registered {name, version} or None."""
    dims = dimensions(cfg.space)
    (folder / TABLE).write_text(table(rows, [d.key for d in dims]))
    plot(rows, dims, folder / PLOT)
    write_json(rows, folder / "trials.json")
    for name in (TABLE, PLOT, "trials.json"):
        client.log_artifact(parent, str(folder / name))
    for row in rows:
        if row.status == "stopped":
            _close_stopped(client, row)
    finished = [r for r in rows if r.status == "finished"]
    if not finished:
        log.warning("no trial trained to the end: nothing to register")
        return None
    best = finished[0]
    client.log_metric(parent, "best_auc", best.auc)
    client.set_tag(parent, "pul.best_trial", best.trial_id)
    client.set_tag(parent, "pul.best_run", best.run_id)
    return _register(best, cfg, folder, uri, parent) if cfg.register else None


def _close_stopped(client: Any, row: TrialRow) -> None:
    """A trial stopped by the scheduler dies with its workers, its MLflow run left RUNNING
    (or FAILED, when the trainer's error reached the run before the process ended): end
    it KILLED, saying why."""
    if not row.run_id:
        return
    client.set_tag(row.run_id, STOPPED_TAG, f"at step {row.step}, val_auc {row.val_auc}")
    if client.get_run(row.run_id).info.status != "KILLED":
        client.set_terminated(row.run_id, status="KILLED")


def _register(
    best: TrialRow, cfg: SweepConfig, folder: Path, uri: str, parent: str
) -> dict[str, str]:
    from jobs.tracking.registry import register_tracker  # MLflow's model code is slow to import

    marker = folder / REGISTERED
    if marker.exists():
        return json.loads(marker.read_text())
    run_dir = Path(best.run_dir)
    metrics = {"auc": best.auc, "precision": best.precision_20}
    if best.val_auc is not None:
        metrics["val_auc"] = best.val_auc
    tags = {
        SWEEP_TAG: parent,
        "pul.train_run": best.run_id,
        "pul.trial": best.trial_id,
        "pul.pairs_lineage": read_manifest(trial_config(cfg, best.point, uri).data).lineage,
        **{f"pul.param.{key}": str(value) for key, value in best.point.items()},
    }
    name, version = register_tracker(
        run_dir / MODEL_FILE,
        tracking_uri=uri,
        run_id=parent,  # the sweep's run holds the model, as the pipeline's run holds its own
        metrics=metrics,
        tags=tags,
        config_file=run_dir / CONFIG_FILE,
    )
    registered = {"name": name, "version": version, "alias": "candidate"}
    marker.write_text(json.dumps(registered))
    log.info("registered %s version %s (alias candidate): trial %s", name, version, best.trial_id)
    return registered
