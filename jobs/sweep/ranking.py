"""A sweep's ranking as a Markdown table and a PNG (AUC against each searched value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # a bare Figure draws with Agg: no display needed

from jobs.sweep.results import TrialRow
from jobs.sweep.space import Dimension

TABLE = "results.md"
PLOT = "ranking.png"
MARKS = (
    ("finished", "auc", {"marker": "o", "color": "C0", "label": "benchmark AUC"}),
    ("stopped", "val_auc", {"marker": "x", "color": "C3", "label": "stopped early: last val AUC"}),
)
"""What each trial is plotted by: (status, score, marker style)."""


def table(rows: list[TrialRow], keys: list[str]) -> str:
    """One line per trial, in rank order: its searched values, how it ended, its scores."""
    head = ["rank", "trial", *keys, "status", "steps", "val AUC", "AUC", "P@20", "MLflow run"]
    rule = ["---:", "---", *["---"] * len(keys), "---", "---:", "---:", "---:", "---:", "---"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    for rank, row in enumerate(rows, 1):
        status = "finished" if row.status == "finished" else f"stopped early at step {row.step}"
        cells = [
            str(rank),
            row.trial_id,
            *(_value(row.point.get(key)) for key in keys),
            status,
            str(row.step),
            _score(row.val_auc),
            _score(row.auc),
            _score(row.precision_20),
            row.run_id,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[TrialRow], dims: list[Dimension], path: Path) -> Path:
    """One panel per searched field: the benchmark AUC of each finished trial and the last
    validation AUC of each trial stopped early, against the trial's value of that field."""
    figure = Figure(figsize=(4.0 * len(dims), 3.6), dpi=120)
    for i, dim in enumerate(dims):
        axes = figure.add_subplot(1, len(dims), i + 1)
        positions = _positions(dim)
        for status, score, style in MARKS:
            picked = [r for r in rows if r.status == status and getattr(r, score) is not None]
            if picked:
                x = [positions(r.point.get(dim.key)) for r in picked]
                axes.scatter(x, [getattr(r, score) for r in picked], s=36, **style)
        if dim.is_choice:
            labels = [_value(v) for v in dim.values]
            axes.set_xticks(range(len(labels)), labels)
        elif dim.log:
            axes.set_xscale("log")
        axes.set(xlabel=dim.key, ylabel="AUC" if i == 0 else None)
        axes.grid(True, alpha=0.4)
    figure.axes[0].legend(fontsize=8, loc="best")
    figure.suptitle(f"{len(rows)} trials: AUC against each searched value")
    figure.tight_layout()
    figure.savefig(path)
    return path


def _positions(dim: Dimension):
    """x of a value: its index among a choice's values, else the value itself."""
    if not dim.is_choice:
        return float
    index = {_value(v): i for i, v in enumerate(dim.values)}
    return lambda value: index.get(_value(value), len(index))


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
