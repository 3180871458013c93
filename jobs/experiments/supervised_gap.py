"""unsupervised-vs-supervised: AlexPUL against the supervised SiamFC baseline, on the same
videos with the same stage-3 steps.

Two arms of one sweep: `alexpul` (the PUL stage 3: mined pairs, the stage-1 model as init,
NR with the noise estimated from the cycle errors, AHM) and `siamfc-supervised` (SiamFC's
recipe: pairs cut from the same clips' ground truth, a fresh network, BCE, random
mini-batches, no contrastive term). The supervised arm has no stage 1: PUL's budget is
its stage-3 steps plus stage 1's, which the report states.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from jobs.experiments.config import ExperimentConfig
from jobs.experiments.inputs import Inputs
from jobs.experiments.report import SEED, grouped, markdown_table, seeds_line
from jobs.sweep.config import SweepConfig
from jobs.sweep.results import TrialRow
from jobs.sweep.space import ARM

NAME = "unsupervised-vs-supervised"
CLAIM = "the unsupervised tracker comes close to its supervised baseline (SiamFC)"
PUL, SUPERVISED = "alexpul", "siamfc-supervised"


def sweep_config(cfg: ExperimentConfig, inputs: Inputs) -> SweepConfig:
    arms = {
        PUL: {"data": inputs.mined, "init": inputs.bd, "loss.kind": "nr", "loss.noise": "auto",
              "strategy": "ahm"},
        SUPERVISED: {"data": inputs.truth, "init": "", "loss.kind": "bce", "loss.noise": 0.0,
                     "strategy": "rss", "contrastive_weight": 0.0},
    }  # fmt: skip
    space = {ARM: [PUL, SUPERVISED], SEED: list(cfg.seeds)}
    return inputs.sweep(
        cfg.sweep, cfg.sweep.tc, space, data=inputs.mined, init=inputs.bd, arms=arms
    )


def report(rows: list[TrialRow], cfg: ExperimentConfig, uri: str = "") -> tuple[str, Figure]:
    auc = grouped(rows, lambda r: r.point[ARM], lambda r: r.auc)
    p20 = grouped(rows, lambda r: r.point[ARM], lambda r: r.precision_20)
    lines = [[arm, auc[arm].cell(), p20[arm].cell()] for arm in (PUL, SUPERVISED) if arm in auc]
    ratio = "-"
    if PUL in auc and SUPERVISED in auc and auc[SUPERVISED].mean > 0:
        ratio = f"{100.0 * auc[PUL].mean / auc[SUPERVISED].mean:.0f}%"
    steps = cfg.sweep.tc.train.steps
    text = (
        f"## {NAME}\n\nClaim: {CLAIM}.\n\n"
        f"{markdown_table(['tracker', 'AUC', 'precision @ 20 px'], lines)}\n"
        f"AlexPUL reaches **{ratio}** of the supervised baseline's AUC. Both trained "
        f"{steps} stage-3 steps; AlexPUL also had stage 1 ({cfg.inputs.bd.train.steps} steps "
        "on the same unlabeled clips), the supervised baseline the clips' ground truth.\n"
        f"{seeds_line(rows)}\n"
    )
    figure = Figure(figsize=(4.5, 3.6), dpi=120)
    axes = figure.add_subplot()
    for i, arm in enumerate((PUL, SUPERVISED)):
        scores = [r.auc for r in rows if r.point.get(ARM) == arm and r.auc is not None]
        if scores:
            axes.bar(i, np.mean(scores), color=f"C{i}", alpha=0.6)
            axes.scatter([i] * len(scores), scores, color="k", s=14, zorder=3)
    axes.set_xticks([0, 1], [PUL, SUPERVISED])
    axes.set(ylabel="benchmark AUC", title="unsupervised vs supervised")
    axes.grid(True, axis="y", alpha=0.4)
    figure.tight_layout()
    return text, figure
