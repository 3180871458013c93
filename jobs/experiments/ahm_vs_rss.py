"""ahm-vs-rss: anchor-based hard-negative mining (AHM) against random mini-batches (RSS)
at small batch sizes (supplement Sec. C), same mined pairs, same steps.

Besides the trackers' AUC, the report gives the mechanism the supplement describes: how
similar a batch's negatives are (the mean cosine similarity of the contrastive term's
negative pairs, logged at every log step as `negative_similarity`, averaged over the run).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jobs.experiments.config import ExperimentConfig
from jobs.experiments.inputs import Inputs
from jobs.experiments.report import SEED, Spread, grouped, markdown_table, relative_gain, seeds_line
from jobs.sweep.config import SweepConfig
from jobs.sweep.results import TrialRow

NAME = "ahm-vs-rss"
CLAIM = "AHM beats random mini-batches (RSS) at small batch sizes"
STRATEGY, BATCH = "strategy", "train.batch_size"
STRATEGIES = ("ahm", "rss")
NEGATIVES = "negative_similarity"


def sweep_config(cfg: ExperimentConfig, inputs: Inputs) -> SweepConfig:
    tc = cfg.sweep.tc
    if tc.contrastive_weight == 0:
        raise ValueError(
            "ahm-vs-rss needs the contrastive term: set sweep.tc.contrastive_weight > 0"
        )
    space = {STRATEGY: list(STRATEGIES), BATCH: list(cfg.batch_sizes), SEED: list(cfg.seeds)}
    return inputs.sweep(cfg.sweep, tc, space, data=inputs.mined, init=inputs.bd)


def report(rows: list[TrialRow], cfg: ExperimentConfig, uri: str = "") -> tuple[str, Figure]:
    similarity = _mean_metric(rows, NEGATIVES, uri)
    auc, neg = {}, {}
    for strategy in STRATEGIES:
        picked = [r for r in rows if r.point.get(STRATEGY) == strategy]
        auc[strategy] = grouped(picked, lambda r: int(r.point[BATCH]), lambda r: r.auc)
        neg[strategy] = grouped(
            picked, lambda r: int(r.point[BATCH]), lambda r: similarity.get(r.run_id, np.nan)
        )
    sizes = sorted(set(auc["ahm"]) | set(auc["rss"]))
    empty = Spread(float("nan"), float("nan"), 0)
    lines = []
    for size in sizes:
        a, r = auc["ahm"].get(size, empty), auc["rss"].get(size, empty)
        lines.append([
            str(size), a.cell(), r.cell(), relative_gain(a, r),
            neg["ahm"].get(size, empty).cell(), neg["rss"].get(size, empty).cell(),
        ])  # fmt: skip
    head = ["batch", "AHM AUC", "RSS AUC", "AHM over RSS", "AHM neg. sim.", "RSS neg. sim."]
    text = (
        f"## {NAME}\n\nClaim: {CLAIM}.\n\n{markdown_table(head, lines)}\n"
        "neg. sim.: mean cosine similarity of the negatives in a training batch (higher: "
        "harder negatives).\n"
        f"{seeds_line(rows)}\n"
    )
    figure = Figure(figsize=(9.0, 3.6), dpi=120)
    for i, (values, label) in enumerate(
        ((auc, "benchmark AUC"), (neg, "negatives' mean cosine similarity"))
    ):
        axes = figure.add_subplot(1, 2, i + 1)
        for strategy, colour in zip(STRATEGIES, ("C0", "C1"), strict=True):
            xs = sorted(values[strategy])
            axes.errorbar(
                xs, [values[strategy][x].mean for x in xs],
                yerr=[values[strategy][x].std for x in xs],
                marker="o", capsize=3, color=colour, label=strategy.upper(),
            )  # fmt: skip
        axes.set(xlabel="batch size", ylabel=label)
        axes.set_xticks(sizes)
        axes.grid(True, alpha=0.4)
        axes.legend()
    figure.suptitle("AHM vs random mini-batches")
    figure.tight_layout()
    return text, figure


def _mean_metric(rows: list[TrialRow], key: str, uri: str) -> dict[str, Any]:
    """run id -> the mean of the metric's history over the run (finished trials)."""
    if not uri:
        return {}
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    out = {}
    for row in rows:
        if row.run_id:
            history = client.get_metric_history(row.run_id, key)
            if history:
                out[row.run_id] = float(np.mean([m.value for m in history]))
    return out
