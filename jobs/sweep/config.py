"""What a sweep runs: its inputs, search space, searcher, scheduler and validation set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobs.sweep.space import ARM, check, check_arms, dimensions
from jobs.train.tc import TCConfig

BenchmarkFormat = Literal["otb", "got10k", "lasot", "vot"]


def _default_space() -> dict[str, Any]:
    return {"loss.noise": ["auto", 0.0, 8.0], "train.batch_size": [8, 16]}


@dataclass
class AshaConfig:
    """ASHA (asynchronous successive halving): at each rung a trial that validates below
    the best 1/reduction_factor of those that reached the rung before it is stopped."""

    grace_period: int = 100
    """Training steps every trial gets before it can be stopped (the first rung)."""
    reduction_factor: float = 2.0
    """Rungs lie at grace_period x reduction_factor^k steps; about 1/reduction_factor of
    the trials reaching a rung go on past it."""

    def __post_init__(self) -> None:
        if self.grace_period < 1 or self.reduction_factor <= 1:
            raise ValueError(
                f"need grace_period >= 1 and reduction_factor > 1, got {self.grace_period}, "
                f"{self.reduction_factor}"
            )


@dataclass
class ValidationConfig:
    """The small held-out benchmark each trial is scored on while it trains (its AUC is
    `val_auc`, what ASHA and Optuna compare). Validation runs every tc.train.validate_every
    steps; 0 turns it off."""

    root: str = ""
    """Labeled benchmark folder; empty: the sweep's benchmark."""
    format: Literal["", "otb", "got10k", "lasot", "vot"] = ""
    """Layout of `root`; empty: the sweep's benchmark_format."""
    sequences: int = 2
    """Sequences tracked (the first, by name)."""
    frames: int = 30
    """Frames tracked of each, from its first (where the box is given)."""

    def __post_init__(self) -> None:
        if self.sequences < 1 or self.frames < 2:
            raise ValueError(
                f"need validation.sequences >= 1 and frames >= 2, got {self.sequences}, "
                f"{self.frames}"
            )


@dataclass
class SweepConfig:
    experiment: str = "pul"
    """MLflow experiment of the sweep's run and its trials' runs."""
    tracking_uri: str = ""
    """MLflow tracking URI; empty: $MLFLOW_TRACKING_URI, else SQLite under the work folder."""
    data: str = ""
    """Pair shards (from `pul mine`) every trial trains on."""
    init: str = ""
    """The stage-1 model every trial starts from."""
    benchmark: str = ""
    """Labeled benchmark folder each finished trial's tracker is scored on (its AUC ranks
    the trials and picks the one registered)."""
    benchmark_format: BenchmarkFormat = "otb"
    """Layout of `benchmark`."""
    sequences: list[str] = field(default_factory=list)
    """Only these benchmark sequences (default: all)."""
    space: dict[str, Any] = field(default_factory=_default_space)
    """TCConfig field (dotted path) -> a list of values, or {uniform|loguniform: [low,
    high]} (random and optuna only). See jobs/sweep/space.py and configs/sweeps/."""
    searcher: Literal["grid", "random", "optuna"] = "grid"
    """grid: every combination of the listed values; random: num_samples independent
    draws; optuna: num_samples draws by Optuna's TPE, each informed by the trials before."""
    num_samples: int = 8
    """Trials of the random and optuna searchers (grid runs each combination once)."""
    seed: int = 0
    """Seeds the random and optuna searchers: the same sweep draws the same points."""
    scheduler: Literal["fifo", "asha"] = "fifo"
    """fifo: every trial trains to the end; asha: trials that validate poorly are stopped
    early (needs tc.train.validate_every)."""
    asha: AshaConfig = field(default_factory=AshaConfig)
    """ASHA's rungs (scheduler=asha)."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    """The held-out set scored during training (tc.train.validate_every > 0)."""
    tc: TCConfig = field(default_factory=TCConfig)
    """Everything else of the trials (their data and init come from the sweep's)."""
    max_concurrent: int = 0
    """Trials running at once; 0: as many as the cluster's CPUs (and GPUs) hold, each
    trial taking tc.train.workers x tc.train.cpus_per_worker CPUs (x 1 GPU with use_gpu)."""
    register: bool = True
    """Register the best finished trial's tracker (alias candidate, tag pul.sweep_run)."""
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named bundles of settings, compared as one searched value `arm` (list it in the
    space: `arm: [name, ...]`). Each arm sets TCConfig fields by dotted path, and may train
    on its own `data` and start from its own `init` (e.g. a supervised baseline on labeled
    pairs against PUL on mined ones); the space's other keys vary within every arm."""

    def __post_init__(self) -> None:
        dims = dimensions(self.space)
        if not dims:
            raise ValueError("the search space is empty: give space.KEY=[values]")
        if any(d.key != ARM for d in dims):
            check([d for d in dims if d.key != ARM], self.tc)
        check_arms(self.arms, [d for d in dims if d.key == ARM], self.tc)
        ranges = [d.key for d in dims if not d.is_choice]
        if self.searcher == "grid" and ranges:
            raise ValueError(
                f"searcher=grid needs a list of values for every key; {ranges[0]} is a range "
                "(use searcher=random or optuna)"
            )
        if self.num_samples < 1 or self.max_concurrent < 0:
            raise ValueError(
                f"need num_samples >= 1 and max_concurrent >= 0 (0: from the cluster), got "
                f"{self.num_samples}, {self.max_concurrent}"
            )
        steps = self.tc.train.steps
        if self.scheduler == "asha":
            if self.tc.train.validate_every == 0:
                raise ValueError(
                    "scheduler=asha stops trials on their validation AUC: set "
                    "tc.train.validate_every (steps between validations)"
                )
            if self.asha.grace_period >= steps:
                raise ValueError(
                    f"asha.grace_period ({self.asha.grace_period}) must be below "
                    f"tc.train.steps ({steps})"
                )

    @property
    def metric(self) -> str:
        """What the searcher and scheduler compare: the validation AUC where trials
        validate, else the benchmark AUC of their finished tracker."""
        return "val_auc" if self.tc.train.validate_every else "auc"
