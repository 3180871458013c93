"""Stage 1, background discrimination (BD): contrastive learning on patches of unlabeled video.

Each rank keeps a pool of patches cut from random frames of its clip stream by its loader
processes (patch_chunks.py). Once per pool ("epoch") the pool is embedded with the current
network and indexed; mini-batches are an anchor and its nearest neighbours (AHM), or random
patches (RSS, the ablation). Two augmented views of every patch of a batch, made for that
batch (batched on the trainer's GPU, or with OpenCV on CPUs: train.augment_on), feed
InfoNCE, with negatives gathered from all ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from jobs.train.config import Tracked, TrainConfig
from jobs.train.damage import SKIPPED, skip_counter
from jobs.train.loading import chunks, fill_pool
from jobs.train.loop import Loader
from jobs.train.pair_stream import stream_seed
from jobs.train.patch_chunks import PatchChunks
from jobs.train.pictures import ahm_picture
from jobs.train.shared import channels_last_view, embed_pool, export_net, unwrap
from pul.ahm import ahm_batches
from pul.augment import AugmentConfig, two_views
from pul.augment_device import two_views_batch
from pul.contrastive import info_nce
from pul.models import ModelConfig, SiamNet, build_model
from pul.patches import PatchConfig


@dataclass
class BDConfig(Tracked):
    data: str = ""
    """Clip shards to learn from (labels, if any, are never read)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network (its projection head gives the embeddings)."""
    patches: PatchConfig = field(default_factory=PatchConfig)
    """How patches are cut from frames."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """The two views of a patch (supplement Sec. F)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=32, lr=0.05))
    """Steps, optimiser, workers, checkpoints; batch_size is the AHM mini-batch (anchor + k-1)."""
    tau: float = 0.2
    """InfoNCE temperature."""
    strategy: Literal["ahm", "rss"] = "ahm"
    """Mini-batches: anchor + nearest neighbours (AHM) or random patches (RSS, the ablation)."""
    pool: int = 2048
    """Patches per rank in the pool that batches are drawn from; re-drawn and re-indexed with
    fresh embeddings after every pass over it (METHOD.md: once per epoch)."""
    patches_per_frame: int = 4
    """Patches cut from each sampled frame (one frame per clip)."""
    shuffle: int = 64
    """Clips held in the shuffle buffer of each data stream."""

    def __post_init__(self) -> None:
        if self.tau <= 0:
            raise ValueError(f"tau must be positive, got {self.tau}")
        if self.pool < 2 * self.train.batch_size:
            raise ValueError(
                f"pool ({self.pool}) must hold at least two batches ({self.train.batch_size} each)"
            )
        if self.patches_per_frame < 1:
            raise ValueError(f"patches_per_frame must be at least 1, got {self.patches_per_frame}")


class Embedder(nn.Module):
    """What DDP wraps in stage 1: images -> unit-norm embeddings (the gradient path)."""

    def __init__(self, net: SiamNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: N x 3 x 127 x 127 float 0..255 -> N x D
        return self.net.embed(images)


class BDStage:
    def __init__(self, cfg: BDConfig) -> None:
        self.cfg = cfg

    def build_model(self) -> Embedder:
        return Embedder(build_model(self.cfg.model))

    def batches(
        self, start_step: int, model: nn.Module, loader: Loader
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Loader processes cut patches (patch_chunks.py); here, on the device: the pool's
        AHM index and each batch's two augmented views."""
        cfg, device = self.cfg, loader.device
        seed = stream_seed(cfg.train.seed, start_step)
        rng = np.random.default_rng(seed)  # AHM's anchors (host)
        generator = torch.Generator(device).manual_seed(seed)  # the views (device)
        chunk = max(cfg.patches_per_frame, min(256, cfg.pool // max(1, loader.workers)))
        dataset = PatchChunks(
            cfg.data, seed, cfg.shuffle, chunk, cfg.patches_per_frame, cfg.patches,
            partial(skip_counter, cfg.train),
        )  # fmt: skip
        source = chunks(dataset, loader)
        while True:
            pool, skipped = fill_pool(source, cfg.pool, device)
            patches = pool["patches"]
            index = embed_pool(unwrap(model).net, patches)
            images = None if loader.augment_on_device else patches.permute(0, 2, 3, 1).numpy()
            for idx in ahm_batches(index, cfg.train.batch_size, rng, cfg.strategy):
                if images is None:
                    picked = patches[torch.as_tensor(idx, device=device)]
                    a, b = two_views_batch(picked, cfg.augment, generator)
                else:  # OpenCV on the host, fresh views for every batch
                    a, b = (channels_last_view(v) for v in two_views(images[idx], rng, cfg.augment))
                yield {"a": a, "b": b, SKIPPED: torch.tensor(skipped)}
                skipped = 0

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        views = torch.cat([batch["a"], batch["b"]]).float()  # one forward: DDP-friendly
        emb = model(views).float()  # 2N x D
        a, b = emb.chunk(2)
        loss = info_nce(a, b, self.cfg.tau)
        with torch.no_grad():
            pos = (a * b).sum(dim=1).mean()  # stays on the device until a log step
        return loss, {"pos_sim": pos}

    def export(self, model: nn.Module, folder: str) -> None:
        export_net(unwrap(model).net, self.cfg.model, folder)

    def picture(self, model_file: Path, run_dir: Path) -> Path:
        return ahm_picture(model_file, self.cfg, run_dir / "ahm_batches.png")
