"""Damaged samples in training: counted where they are skipped, summed over every rank into
the run's `data_skipped` metric, and marked on the run's data lineage.

A rank's stream skips damaged samples in one place (`shards.reader.SkipCounter`, limited by
`train.max_damaged`); each batch carries how many were skipped since the previous one
(`SKIPPED`), so the count crosses DataLoader processes with the data it belongs to, and the
loop sums it over the ranks. A run that skipped any read a damaged copy of its set, not the
set its manifest's lineage names: its lineage tag says so.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from jobs.train.config import TrainConfig
from shards.manifest import DAMAGED_SUFFIX
from shards.reader import SkipCounter

SKIPPED = "data_skipped"
"""Batch field (damaged samples skipped since the previous batch) and metric name (all ranks,
since this attempt of the run started)."""
DAMAGED_TAG = "pul.data_damaged"
"""MLflow tag of a run that skipped damaged samples: how many (at least)."""


def skip_counter(cfg: TrainConfig) -> SkipCounter:
    """A rank's counter of damaged samples, stopping past the configured share."""
    return SkipCounter(max_share=cfg.max_damaged, floor=cfg.max_damaged_floor)


def skipped_since_last(skips: SkipCounter) -> torch.Tensor:
    """The SKIPPED field of the next batch."""
    return torch.tensor(skips.take_unreported(), dtype=torch.int64)


class SkipTally:
    """The loop's running total of SKIPPED over every rank. Counts stay on the device between
    reads; the all-reduce and the host read happen only on reporting steps (the same steps
    on every rank, so the collectives line up), not in every training step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pending = torch.zeros(1, dtype=torch.int64, device=device)
        self.total = 0

    def add(self, batch: dict[str, torch.Tensor], report: bool) -> dict[str, float]:
        fresh = batch.get(SKIPPED)
        if fresh is not None:
            self.pending += fresh.sum().to(self.device, torch.int64)
        if not report:
            return {}
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.pending)
        self.total += int(self.pending.item())
        self.pending.zero_()
        return {SKIPPED: float(self.total)}


def mark_damaged_run(client: Any, run_id: str, tags: dict[str, str]) -> dict[str, str]:
    """After training: if the run skipped damaged samples, tag it and suffix its lineage
    (also in the returned tags, which registration copies onto the model version)."""
    history = client.get_metric_history(run_id, SKIPPED)
    skipped = int(max((m.value for m in history), default=0))
    if not skipped:
        return tags
    marked = {
        **tags,
        "pul.data_lineage": tags["pul.data_lineage"] + DAMAGED_SUFFIX,
        DAMAGED_TAG: str(skipped),
    }
    for key in ("pul.data_lineage", DAMAGED_TAG):
        client.set_tag(run_id, key, marked[key])
    return marked
