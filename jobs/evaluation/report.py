"""Benchmark reports from saved result files: scores, OTB-style plots, JSON and a table.

Scoring reads files rather than a tracker's in-memory output so that our trackers and
other projects' published raw results go through exactly the same code. Plots follow the
OTB papers: several trackers on one figure, the legend sorted by the plotted score and
showing it (`SiamFC [0.582]`). Metric definitions live in pul/metrics.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from jobs.evaluation.results import (
    ResultsError,
    discover_trackers,
    read_results,
    read_times,
    result_file,
)
from pul.metrics import (
    NORM_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    BenchmarkScore,
    SequenceScore,
    score_benchmark,
    score_sequence,
)

# kind -> (curve attribute, thresholds, score attribute, x label, y label, title)
_PLOTS = {
    "success": (
        "success", SUCCESS_THRESHOLDS, "auc", "Overlap threshold", "Success rate", "Success"
    ),
    "precision": (
        "precision", PRECISION_THRESHOLDS, "precision_20", "Location error threshold (px)",
        "Precision", "Precision",
    ),
    "norm_precision": (
        "norm_precision", NORM_PRECISION_THRESHOLDS, "norm_precision_20",
        "Normalized location error threshold", "Normalized precision", "Normalized precision",
    ),
}  # fmt: skip
_STYLES = ("-", "--", "-.")  # after the 10 default colours, the next 10 trackers get dashes


def score_results(
    results_root: str | Path,
    gt: Mapping[str, np.ndarray],
    trackers: Iterable[str] | None = None,
) -> dict[str, BenchmarkScore]:
    """Scores every tracker (default: every folder of results) on every sequence of `gt`
    (name -> Nx4 xywh, NaN rows where the target has no box). A missing or malformed
    results file, or one of the wrong length, is a ResultsError naming it."""
    names = discover_trackers(results_root) if trackers is None else list(trackers)
    if not names:
        raise ResultsError(f"no tracker results in {results_root}")
    return {name: _score_tracker(Path(results_root), name, gt) for name in names}


def _score_tracker(root: Path, tracker: str, gt: Mapping[str, np.ndarray]) -> BenchmarkScore:
    return score_benchmark([_score_one(root, tracker, seq, boxes) for seq, boxes in gt.items()])


def _score_one(root: Path, tracker: str, seq: str, gt: np.ndarray) -> SequenceScore:
    pred = read_results(root, tracker, seq)
    if len(pred) != len(gt):
        path = result_file(root, tracker, seq)
        raise ResultsError(f"{path}: {len(pred)} boxes for the {len(gt)} frames of {seq}")
    return score_sequence(seq, pred, gt, read_times(root, tracker, seq))


# ---------------------------------------------------------------- plots


def plot_curves(
    scores: Mapping[str, BenchmarkScore], path: str | Path, benchmark: str, kind: str = "success"
) -> Path:
    """One PNG with every tracker's overall curve of `kind` (success, precision or
    norm_precision), best first in the legend."""
    curve, thresholds, score, xlabel, ylabel, title = _PLOTS[kind]
    figure = Figure(figsize=(6.4, 4.8), dpi=150)
    axes = figure.add_subplot()
    slots = {name: i for i, name in enumerate(sorted(scores))}  # same colour in every plot
    for name in _ranked(scores, score):
        label = f"{name} [{getattr(scores[name], score):.3f}]"
        style = dict(color=f"C{slots[name] % 10}", linestyle=_STYLES[slots[name] // 10 % 3])
        axes.plot(thresholds, getattr(scores[name], curve), label=label, linewidth=1.5, **style)
    axes.set(xlabel=xlabel, ylabel=ylabel, xlim=(thresholds[0], thresholds[-1]), ylim=(0, 1))
    axes.set_title(f"{title} plots of OPE on {benchmark}")
    axes.grid(True, alpha=0.4)
    axes.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def write_plots(
    scores: Mapping[str, BenchmarkScore], folder: str | Path, benchmark: str
) -> list[Path]:
    """success_plot.png, precision_plot.png and norm_precision_plot.png in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [plot_curves(scores, folder / f"{k}_plot.png", benchmark, k) for k in _PLOTS]


# ---------------------------------------------------------------- JSON and table


def metrics_dict(scores: Mapping[str, BenchmarkScore], benchmark: str) -> dict:
    """Overall numbers and curves per tracker, and per-sequence numbers; NaN becomes None."""
    trackers = {name: _tracker_dict(score) for name, score in scores.items()}
    thresholds = {
        "success": SUCCESS_THRESHOLDS.tolist(),
        "precision": PRECISION_THRESHOLDS.tolist(),
        "norm_precision": NORM_PRECISION_THRESHOLDS.tolist(),
    }
    return _clean({"benchmark": benchmark, "thresholds": thresholds, "trackers": trackers})


def write_metrics_json(
    scores: Mapping[str, BenchmarkScore], path: str | Path, benchmark: str
) -> Path:
    Path(path).write_text(json.dumps(metrics_dict(scores, benchmark), indent=2) + "\n")
    return Path(path)


def format_table(scores: Mapping[str, BenchmarkScore], got10k: bool = False) -> str:
    """A markdown table, best tracker first: by AUC, or by AO when `got10k` adds AO/SR.
    NP@0.2 is the normalised precision at 0.2; FPS appears when some tracker has times."""
    columns = [("AUC", "auc"), ("P@20", "precision_20"), ("NP@0.2", "norm_precision_20")]
    if got10k:
        columns += [("AO", "ao"), ("SR0.5", "sr50"), ("SR0.75", "sr75")]
    if any(s.fps is not None for s in scores.values()):
        columns.append(("FPS", "fps"))
    header = "| Tracker | " + " | ".join(title for title, _ in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = [
        f"| {name} | "
        + " | ".join(_cell(getattr(scores[name], key), key) for _, key in columns)
        + " |"
        for name in _ranked(scores, "ao" if got10k else "auc")
    ]
    return "\n".join([header, rule, *rows]) + "\n"


def write_report(
    scores: Mapping[str, BenchmarkScore], folder: str | Path, benchmark: str, got10k: bool = False
) -> dict[str, Path]:
    """Everything the evaluation job publishes: metrics.json, table.md and the plots."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "table.md"
    table.write_text(f"## {benchmark}\n\n" + format_table(scores, got10k))
    files = {"metrics": write_metrics_json(scores, folder / "metrics.json", benchmark)}
    files["table"] = table
    files.update({p.stem: p for p in write_plots(scores, folder, benchmark)})
    return files


# ---------------------------------------------------------------- helpers


def _ranked(scores: Mapping[str, BenchmarkScore], key: str) -> list[str]:
    """Names by descending score (NaN last), ties by name, so reports are reproducible."""

    def order(name: str) -> tuple[float, str]:
        value = getattr(scores[name], key)
        return (math.inf if value is None or math.isnan(value) else -value, name)

    return sorted(scores, key=order)


def _tracker_dict(score: BenchmarkScore) -> dict:
    overall = dict(score.summary())
    overall.update(
        success_curve=score.success.tolist(),
        precision_curve=score.precision.tolist(),
        norm_precision_curve=score.norm_precision.tolist(),
    )
    return {
        "overall": overall,
        "sequences": {n: _sequence_dict(s) for n, s in score.sequences.items()},
    }


def _sequence_dict(score: SequenceScore) -> dict:
    keys = ("auc", "precision_20", "norm_precision_20", "norm_precision_auc", "ao", "sr50", "sr75")
    return {"frames": score.frames, **{k: getattr(score, k) for k in keys}, "fps": score.fps}


def _clean(value: object) -> object:
    """JSON has no NaN: a score without any valid frame is written as null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: float | None, key: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if key == "fps" else f"{value:.3f}"
