"""What the pipeline runs: where the data comes from, the benchmark, and every stage's config.

A pipeline config is one YAML file (configs/demo.yaml is one): the sections `pack`, `bd`,
`mine` and `tc` are the same configs the single-stage commands read, so a preset serves
`pul train bd --config FILE` and `pul pipeline --config FILE` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from jobs.mine import MineJobConfig
from jobs.train.bd import BDConfig
from jobs.train.config import Tracked
from jobs.train.tc import TCConfig
from shards.pack_config import PackConfig
from shards.synth import SynthConfig


@dataclass
class DataConfig:
    sources: list[str] = field(default_factory=list)
    """Videos or dataset folders to pack (anything `pul shards pack` reads)."""
    footage: list[str] = field(default_factory=list)
    """Real footage shipped with the install to add: 'bikes', 'carphone_pristine', 'cityCC0'
    (shards/footage.py; README's "Bundled footage" lists their packages and licences)."""
    synth: SynthConfig | None = None
    """Synthetic videos to generate and add (their ground truth is never read by training)."""
    clips: str = ""
    """A finished clip-shard set to use instead of packing (verified once, then reused)."""


@dataclass
class BenchmarkConfig:
    root: str = ""
    """Labeled benchmark folder the trained tracker is evaluated on."""
    format: Literal["otb", "got10k", "lasot", "vot"] = "otb"
    """Layout of `root`."""
    synth: SynthConfig | None = None
    """A synthetic benchmark to generate instead of `root` (use split: bench, other seeds)."""
    sequences: list[str] = field(default_factory=list)
    """Only these sequences (default: all)."""


@dataclass
class PipelineConfig(Tracked):
    data: DataConfig = field(default_factory=DataConfig)
    """Training videos: packed into clip shards, or an existing shard set."""
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    """Held-out labeled videos for the evaluation step."""
    pack: PackConfig = field(default_factory=PackConfig)
    """How the videos become clip shards (its `sources` come from `data`)."""
    bd: BDConfig = field(default_factory=BDConfig)
    """Stage 1, background discrimination (its `data` is set by the pipeline)."""
    mine: MineJobConfig = field(default_factory=MineJobConfig)
    """Stage 2, mining pairs with the stage-1 model (`data` and `model` set by the pipeline)."""
    tc: TCConfig = field(default_factory=TCConfig)
    """Stage 3, the tracker trained on mined pairs (`data` and `init` set by the pipeline)."""
    rounds: int = 1
    """Progressive rounds of mining and stage 3: round 1 mines with the stage-1 model and
    trains from it; each later round mines again with the latest stage-3 tracker (better
    pairs, on more of the clips) and trains on them from that tracker. Every round's
    tracker is scored; the last one is registered."""
    round_steps: int = 0
    """Stage-3 steps of each round after the first (they start from a trained tracker, so
    they may be shorter); 0: tc.train.steps."""
    register: bool = True
    """Register the trained tracker in the MLflow model registry (the pipeline registers
    after evaluation, with the scores; the stages' own `register` stays off)."""
    alias: str = "candidate"
    """Alias the new registered version gets."""
    eval_workers: int = 0
    """Benchmark sequences tracked at once: 0 = one Ray task per CPU, 1 = in this process."""

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.round_steps < 0:
            raise ValueError(
                f"need rounds >= 1 and round_steps >= 0, got {self.rounds}, {self.round_steps}"
            )
