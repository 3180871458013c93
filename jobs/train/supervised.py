"""The supervised baseline: SiamFC / SiamDW trained on labeled clips with the balanced BCE.

It is the yardstick the unsupervised stages are measured against, and it exercises the
whole runner (Ray Train, checkpoints, resume, MLflow) on the same code path they use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jobs.train.config import Tracked, TrainConfig
from jobs.train.damage import skip_counter
from jobs.train.loop import Loader
from jobs.train.pair_stream import pair_batches, stream_seed
from jobs.train.pictures import response_picture
from jobs.train.shared import export_net, unwrap
from pul.losses import balanced_bce
from pul.models import ModelConfig, SiamNet, build_model
from pul.pairs import PairConfig


@dataclass
class SupervisedConfig(Tracked):
    data: str = ""
    """Labeled clip shards (a folder with manifest.json), e.g. packed synthetic videos."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network to train."""
    pairs: PairConfig = field(default_factory=PairConfig)
    """How training pairs are cut from clips."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Steps, optimiser, workers, checkpoints."""
    label_radius: float = 16.0
    """Response cells within this many search pixels of the target are positives (SiamFC)."""
    shuffle: int = 64
    """Clips held in the shuffle buffer of each data stream."""

    def __post_init__(self) -> None:
        if self.label_radius <= 0:
            raise ValueError(f"label_radius must be positive, got {self.label_radius}")


class SupervisedStage:
    """The pieces of supervised training the generic loop asks for."""

    def __init__(self, cfg: SupervisedConfig) -> None:
        self.cfg = cfg

    def build_model(self) -> SiamNet:
        model = build_model(self.cfg.model)
        model.projection = None  # no contrastive loss here; DDP rejects unused parameters
        return model

    def batches(
        self, start_step: int, model: torch.nn.Module, loader: Loader
    ) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.cfg
        seed = stream_seed(cfg.train.seed, start_step)
        return pair_batches(
            cfg.data,
            cfg.pairs,
            cfg.train.batch_size,
            seed,
            loader.workers,
            cfg.shuffle,
            skips=skip_counter(cfg.train),
            pin_memory=loader.pin_memory,
            prefetch=loader.prefetch,
        )

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["z"].float(), batch["x"].float())
        loss = balanced_bce(logits.float(), batch["offset"], radius=self.cfg.label_radius)
        return loss, {}

    def export(self, model: torch.nn.Module, folder: str) -> None:
        export_net(unwrap(model), self.cfg.model, folder)

    def picture(self, model_file: Path, run_dir: Path) -> Path:
        return response_picture(
            model_file, self.cfg.data, run_dir / "responses.png", self.cfg.pairs
        )
