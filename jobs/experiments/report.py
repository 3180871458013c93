"""What the experiments' reports share: trials grouped over seeds, mean and spread, cells."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.sweep.results import TrialRow

SEED = "train.seed"
"""The searched key every experiment repeats its settings over."""


@dataclass(frozen=True)
class Spread:
    """A score over seeds: its mean, standard deviation (n - 1) and count."""

    mean: float
    std: float
    n: int

    def cell(self, digits: int = 3) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def spread(values: Iterable[float]) -> Spread:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return Spread(float("nan"), float("nan"), 0)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return Spread(float(np.mean(values)), std, len(values))


def finished(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.status == "finished" and r.auc is not None]


def grouped(
    rows: list[TrialRow], by: Callable[[TrialRow], Any], score: Callable[[TrialRow], float]
) -> dict[Any, Spread]:
    """The score of the finished trials, over seeds, for each value of `by`."""
    groups: dict[Any, list[float]] = {}
    for row in finished(rows):
        groups.setdefault(by(row), []).append(score(row))
    return {key: spread(values) for key, values in groups.items()}


def markdown_table(head: list[str], lines: list[list[str]]) -> str:
    rule = ["---"] + ["---:"] * (len(head) - 1)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def relative_gain(new: Spread, old: Spread) -> str:
    """new / old - 1 of the means, as a signed percentage."""
    if new.n == 0 or old.n == 0 or old.mean == 0:
        return "-"
    return f"{100.0 * (new.mean / old.mean - 1.0):+.1f}%"


def seeds_line(rows: list[TrialRow]) -> str:
    seeds = sorted({r.point.get(SEED) for r in rows if r.point.get(SEED) is not None})
    done = len(finished(rows))
    return f"{done} of {len(rows)} trials finished; seeds {seeds}; mean ± std over seeds."
