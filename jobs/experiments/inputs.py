"""The inputs every experiment starts from, prepared once per work folder and reused."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from jobs.pipeline.run import run_pipeline
from jobs.pipeline.steps import step_key
from jobs.sweep.config import SweepConfig
from jobs.tracking.runs import resolve_uri
from jobs.train.tc import TCConfig
from jobs.truth_pairs import write_truth_pairs


@dataclasses.dataclass(frozen=True)
class Inputs:
    clips: str
    """Labeled clip shards (the truth is read only to cut `truth` and to score mining)."""
    bd: str
    """The stage-1 model (PUL's init)."""
    mined: str
    """Pairs mined with it (stage 2)."""
    truth: str
    """Pairs cut from the clips' ground truth (jobs/truth_pairs.py)."""
    benchmark: str
    """The held-out labeled benchmark every trial is scored on."""
    benchmark_format: str
    """Its layout (otb, got10k, lasot, vot)."""
    tracking_uri: str
    """Where the inputs' runs went; the experiment's sweep logs there too."""

    def sweep(
        self,
        base: SweepConfig,
        tc: TCConfig,
        space: dict[str, Any],
        data: str,
        init: str,
        arms: dict[str, dict[str, Any]] | None = None,
    ) -> SweepConfig:
        """`base` as an experiment's sweep: every point of `space` trained to its end and
        scored (grid, no early stopping), nothing registered."""
        return dataclasses.replace(
            base, tc=tc, space=space, arms=arms or {}, data=data, init=init,
            benchmark=self.benchmark, benchmark_format=self.benchmark_format,
            tracking_uri=self.tracking_uri, searcher="grid", scheduler="fifo", register=False,
        )  # fmt: skip


def prepare(cfg: Any, work: Path, command: list[str]) -> Inputs:
    """Run the pipeline up to mining in WORK/inputs (skipped where done) and cut the
    labeled pairs; `cfg` is the ExperimentConfig."""
    summary = run_pipeline(cfg.inputs, work / "inputs", inputs_only=True)
    uri = summary["tracking_uri"]
    clips = summary["clips"]["path"]
    key = step_key(clips=summary["clips"]["lineage"], pairs=cfg.truth_pairs)[:10]
    truth = write_truth_pairs(clips, work / f"truth-pairs-{key}", cfg.truth_pairs, command=command)
    return Inputs(
        clips=clips,
        bd=summary["bd"]["model"],
        mined=summary["pairs"]["path"],
        truth=str(truth),
        benchmark=str(summary["benchmark"]),
        benchmark_format=cfg.inputs.benchmark.format,
        tracking_uri=uri,
    )


def pinned_uri(cfg: Any, work: Path) -> Any:
    """The config with one tracking URI for the inputs and the sweep (by default SQLite
    under WORK), so that the experiment's runs all sit in one store."""
    uri = resolve_uri(cfg.inputs.tracking_uri or cfg.sweep.tracking_uri, work)
    inputs = dataclasses.replace(cfg.inputs, tracking_uri=uri)
    return dataclasses.replace(
        cfg, inputs=inputs, sweep=dataclasses.replace(cfg.sweep, tracking_uri=uri)
    )
