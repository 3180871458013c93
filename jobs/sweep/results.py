"""A sweep's trials as Tune left them: finished (scored on the benchmark) or stopped early
by the scheduler (with their last validation AUC), ranked."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from jobs.errors import JobError
from jobs.sweep.trial import trial_dir
from jobs.tracking.runs import RUN_ID_FILE


@dataclass
class TrialRow:
    """One trial of the sweep."""

    trial_id: str
    """Tune's id of the trial (its run folder is trial-<id>)."""
    point: dict[str, Any]
    """The searched values: TCConfig dotted path -> value."""
    status: Literal["finished", "stopped"]
    """finished: trained to the end and scored; stopped: ended early by the scheduler."""
    step: int
    """Training steps done (at the last report)."""
    val_auc: float | None
    """The last validation AUC (None without validation)."""
    auc: float | None
    """Success AUC of the finished tracker on the benchmark (None when stopped)."""
    precision_20: float | None
    """Precision at 20 px on the benchmark (None when stopped)."""
    run_id: str
    """The trial's MLflow run."""
    run_dir: str
    """The trial's run folder."""

    def sort_key(self) -> tuple:
        # finished trials first, best AUC first; then the stopped, best last val_auc first
        if self.status == "finished":
            return (0, -(self.auc or 0.0), self.trial_id)
        return (1, -(self.val_auc if self.val_auc is not None else -1.0), self.trial_id)


def collect(results: Any, folder: Path) -> list[TrialRow]:
    """The trials of a Tune ResultGrid, ranked; JobError when any trial failed."""
    rows, failed = [], []
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None or "trial_id" not in metrics:
            failed.append(f"{result.config}: {result.error or 'no result'}")
            continue
        run_dir = trial_dir(folder, metrics["trial_id"])
        rows.append(
            TrialRow(
                trial_id=metrics["trial_id"],
                point=dict(result.config or {}),
                status="finished" if "auc" in metrics else "stopped",
                step=int(metrics.get("step", 0)),
                val_auc=_number(metrics.get("val_auc")),
                auc=_number(metrics.get("auc")),
                precision_20=_number(metrics.get("precision_20")),
                run_id=metrics.get("run_id") or _run_id(run_dir),
                run_dir=str(run_dir),
            )
        )
    if failed:
        raise JobError(f"{len(failed)} of {len(failed) + len(rows)} trials failed: {failed[0]}")
    return sorted(rows, key=TrialRow.sort_key)


def write_json(rows: list[TrialRow], path: Path) -> Path:
    path.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return path


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _run_id(run_dir: Path) -> str:
    """The MLflow run a trial opened (a stopped trial never reported it)."""
    marker = run_dir / RUN_ID_FILE
    return json.loads(marker.read_text())["run_id"] if marker.exists() else ""
