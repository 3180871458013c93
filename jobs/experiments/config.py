"""What an experiment runs: the inputs it prepares, its trials, its seeds."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.pipeline.config import PipelineConfig
from jobs.sweep.config import SweepConfig


@dataclass
class ExperimentConfig:
    inputs: PipelineConfig = field(default_factory=PipelineConfig)
    """The pipeline run up to mining: clips (labeled, whose truth the labeled pairs come
    from), the stage-1 model, the mined pairs and the benchmark. Its `tc` is not used."""
    sweep: SweepConfig = field(default_factory=SweepConfig)
    """The trials' common settings (`sweep.tc`: steps, batch size, workers) and how many
    run at once; each experiment sets the space, data, init and benchmark itself."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Training seeds (tc.train.seed) every compared setting is trained with; the report
    gives the mean and the spread over them."""
    noise_seeds: list[int] = field(default_factory=lambda: [0])
    """noise-robustness's own seeds (each one 2 losses x every noise level: many trials)."""
    truth_pairs: int = 1024
    """Pairs cut from the clips' ground truth (the labeled pairs of noise-robustness and
    of the supervised baseline)."""
    noise_levels: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    """noise-robustness: annotation noise std, search-crop pixels (tc.label_noise)."""
    batch_sizes: list[int] = field(default_factory=lambda: [4, 8])
    """ahm-vs-rss: the small batch sizes compared."""

    def __post_init__(self) -> None:
        if not self.seeds or not self.noise_seeds:
            raise ValueError("seeds and noise_seeds: give at least one training seed each")
        if self.truth_pairs < 1:
            raise ValueError(f"truth_pairs must be >= 1, got {self.truth_pairs}")
        if not self.noise_levels or min(self.noise_levels) < 0:
            raise ValueError(f"noise_levels must be >= 0 pixels, got {self.noise_levels}")
        if not self.batch_sizes or min(self.batch_sizes) < 2:
            raise ValueError(
                f"batch_sizes must be >= 2 (a batch holds negatives), got {self.batch_sizes}"
            )
