"""Stage 3, TC learning: a Siamese tracker trained on mined (noisy) pairs.

Loss per mini-batch: the noise-robust response loss on the pairs (`loss.kind`, default
`nr`) + contrastive_weight x InfoNCE on two augmented views of the pairs' templates. The
mini-batches come from AHM over the templates' embeddings, as in stage 1. The largest
temporal gap of the pairs drawn grows over training (curriculum): near pairs first.

Noise: `loss.noise=auto` estimates the localisation noise of mining from the pairs' cycle
errors (relative to the seed box size, so one number fits objects of every size) and gives
each pair its own noise std in search-crop pixels; `pair` also narrows it by each pair's own
cycle error (pair_noise.py); a number sets it in search-crop pixels. The noise trained with
is logged in one line and as the run's params (noise_*), and each step's batch mean as the
metric noise_sigma_px.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from jobs.errors import JobError
from jobs.train.config import Tracked, TrainConfig
from jobs.train.damage import SKIPPED, skip_counter
from jobs.train.label_noise import noisy_x_box
from jobs.train.loading import chunks, fill_pool
from jobs.train.loop import Loader
from jobs.train.pair_chunks import PairChunks
from jobs.train.pair_noise import (
    NoiseEstimate,
    describe_noise,
    estimate_noise,
    mining_threshold,
    noise_params,
    read_records,
    stored_sigmas_px,
)
from jobs.train.pair_stream import stream_seed
from jobs.train.pictures import plot_responses
from jobs.train.shared import channels_last_view, embed_pool, export_net, to_chw, unwrap
from pul.ahm import ahm_batches
from pul.augment import AugmentConfig, two_views
from pul.augment_device import two_views_batch
from pul.contrastive import info_nce, negative_similarity
from pul.crops import box_center, context_size, crop_and_resize
from pul.losses import LossConfig, response_loss
from pul.models import ModelConfig, SiamNet, build_model
from pul.pairs import PairConfig, make_pair
from pul.pairs_device import exemplars_batch, make_pairs_batch
from pul.weights import load_weights
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pairs import PairRecord, decode_pair
from shards.reader import SkipCounter, clip_stream

log = logging.getLogger(__name__)


@dataclass
class TCConfig(Tracked):
    data: str = ""
    """Pair shards written by `pul mine`."""
    init: str = ""
    """Model file to start from (the stage-1 BD model); empty: a fresh network."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network (must match `init`'s)."""
    pairs: PairConfig = field(default_factory=PairConfig)
    """Crop sizes and the random shift/stretch of the search crop."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Response loss: bce, soft_bce, nr (default) or nr_exact, and the noise std."""
    contrastive_weight: float = 0.1
    """lambda of L = L_NR + lambda * L_contrastive (0 turns the contrastive term off and
    freezes the projection head: AHM still embeds with it, as the init left it)."""
    tau: float = 0.2
    """InfoNCE temperature of the contrastive term."""
    strategy: Literal["ahm", "rss"] = "ahm"
    """Mini-batches of pairs: anchor template + nearest neighbours (AHM) or random (RSS)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Views of the templates for the contrastive term."""
    pool: int = 512
    """Pairs per rank in the pool batches are drawn from; re-drawn after every pass."""
    gap_start: int = 4
    """Largest temporal gap of the pairs drawn at the first step."""
    gap_end: int = 64
    """Largest temporal gap at the last step (grows linearly in between)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=16))
    """Steps, optimiser, workers, checkpoints."""
    shuffle: int = 256
    """Pairs held in the shuffle buffer of each data stream."""
    label_noise: float = 0.0
    """Annotation noise added on purpose, for the noise-robustness experiment: each pair's
    target centre moves by a fixed Gaussian offset of this std per axis, in search-crop
    pixels (jobs/train/label_noise.py); the loss is told sqrt(noise^2 + label_noise^2).
    0: the pairs as stored."""

    def __post_init__(self) -> None:
        if self.contrastive_weight < 0 or self.tau <= 0:
            raise ValueError("need contrastive_weight >= 0 and tau > 0")
        if not 1 <= self.gap_start <= self.gap_end:
            raise ValueError(
                f"need 1 <= gap_start <= gap_end, got {self.gap_start}, {self.gap_end}"
            )
        if not (np.isfinite(self.label_noise) and self.label_noise >= 0):
            raise ValueError(f"label_noise must be finite and >= 0 pixels, got {self.label_noise}")
        if self.pool < 2 * self.train.batch_size:
            raise ValueError(f"pool ({self.pool}) must hold at least two batches")


class TrackerWithEmbedding(nn.Module):
    """What DDP wraps in stage 3: one forward gives the responses and the view embeddings."""

    def __init__(self, net: SiamNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, z: torch.Tensor, x: torch.Tensor, views: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # z: B x 3 x 127 x 127, x: B x 3 x 255 x 255 -> B x 1 x 17 x 17; views: 2B x 3 x 127 x 127
        return self.net(z, x), (self.net.embed(views) if views is not None else None)


class TCStage:
    def __init__(self, cfg: TCConfig) -> None:
        self.cfg = cfg
        if cfg.init:
            _check_init(cfg.init, cfg.model)
        manifest = read_manifest(cfg.data)
        if manifest.kind != "pairs":
            raise ShardError(f"{cfg.data} holds {manifest.kind}, not mined pairs (pul mine)")
        gaps = [int(g) for g in manifest.extra.get("pairs_per_gap", {})] or [1]
        self.min_gap = min(gaps)  # the curriculum never asks for pairs that do not exist
        # Estimated once, on the driver, from all mined pairs: every rank uses the same value.
        self.noise: NoiseEstimate | None = None
        records: list[PairRecord] = []  # not kept: the stage is pickled to every worker
        if cfg.loss.estimated:
            records = read_records(cfg.data)
            self.noise = estimate_noise(records, mining_threshold(manifest))
        self.resolved = self._resolve_noise(records)
        """What the stage derived from its data, for the run's params (job.py logs them)."""

    def build_model(self) -> TrackerWithEmbedding:
        net = build_model(self.cfg.model)
        if self.cfg.init:
            # every tensor of the file fits (checked), so a non-strict load only leaves the
            # stage's own additions fresh
            net.load_state_dict(_init_state(self.cfg.init, net, self.cfg.model), strict=False)
        if self.cfg.contrastive_weight == 0:
            # No loss reaches the projection head: left trainable, DDP would wait for its
            # gradients at every step ("Expected to have finished reduction"). Frozen, it is
            # out of DDP's graph and the optimiser's work, and still embeds AHM's pools.
            net.projection.requires_grad_(False)
        return TrackerWithEmbedding(net)

    def gap_limit(self, step: int) -> int:
        progress = step / max(1, self.cfg.train.steps - 1)
        limit = round(self.cfg.gap_start + progress * (self.cfg.gap_end - self.cfg.gap_start))
        return max(limit, self.min_gap)

    def batches(
        self, start_step: int, model: nn.Module, loader: Loader
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Loader processes read and decode pairs (pair_chunks.py); here, on the device:
        the pool's templates, their AHM index, and each batch's crops and views."""
        cfg, device = self.cfg, loader.device
        seed = stream_seed(cfg.train.seed, start_step)
        rng = np.random.default_rng(seed)  # AHM's anchors (host)
        generator = torch.Generator(device).manual_seed(seed)  # crops, views (device)
        gap_limit = torch.full((1,), self.gap_limit(start_step), dtype=torch.int32)
        chunk = max(1, min(64, cfg.pool // max(1, loader.workers)))
        dataset = PairChunks(
            cfg.data, seed, cfg.shuffle, chunk, gap_limit.share_memory_(), self.sigma_px,
            partial(skip_counter, cfg.train), self.labeled_x_box,
        )  # fmt: skip
        source = chunks(dataset, loader)
        step = start_step
        while True:
            gap_limit[0] = self.gap_limit(step)
            pool, skipped = fill_pool(source, cfg.pool, device)
            if loader.augment_on_device:
                templates = exemplars_batch(
                    pool["z"], pool["z_box"], cfg.pairs.exemplar, cfg.pairs.context
                )
            else:  # OpenCV, as the CPU path has always cut them
                pool = {**pool, **_as_images(pool)}
                pairs = zip(pool["z_hwc"], pool["z_box"], strict=True)
                templates = np.stack([exemplar(z, box, cfg.pairs) for z, box in pairs])
            index = embed_pool(unwrap(model).net, templates)
            for idx in ahm_batches(index, cfg.train.batch_size, rng, cfg.strategy):
                if loader.augment_on_device:
                    picked = torch.as_tensor(idx, device=device)
                    batch = self._batch(pool, templates, picked, generator)
                else:
                    batch = self._batch_opencv(pool, templates, idx, rng)
                yield {**batch, SKIPPED: torch.tensor(skipped)}
                skipped, step = 0, step + 1

    def _batch_opencv(
        self,
        pool: dict[str, Any],
        templates: np.ndarray,
        idx: np.ndarray,
        rng: np.random.Generator,
    ) -> dict[str, torch.Tensor]:
        """The batch cut and augmented with OpenCV on the host, fresh for every batch."""
        cfg = self.cfg
        made = [
            make_pair(
                pool["z_hwc"][i], pool["z_box"][i], pool["x_hwc"][i], pool["x_box"][i],
                cfg.pairs, rng,
            )
            for i in idx
        ]  # fmt: skip
        batch = {
            "z": channels_last_view(np.stack([m[0] for m in made])),
            "x": channels_last_view(np.stack([m[1] for m in made])),
            "offset": torch.from_numpy(np.stack([m[2] for m in made])),
            "sigma": pool["sigma"][torch.as_tensor(idx)],
        }
        if cfg.contrastive_weight > 0:
            a, b = two_views(templates[idx], rng, cfg.augment)
            batch["views"] = channels_last_view(np.concatenate([a, b]))
        return batch

    def _batch(
        self,
        pool: dict[str, torch.Tensor],
        templates: torch.Tensor,
        idx: torch.Tensor,
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        # the pool's templates are cut already (for AHM): not cut again for the batch
        z, x, offset = make_pairs_batch(
            pool["z"][idx], pool["z_box"][idx], pool["x"][idx], pool["x_box"][idx], cfg.pairs,
            generator, templates=templates[idx],
        )  # fmt: skip
        batch = {"z": z, "x": x, "offset": offset, "sigma": pool["sigma"][idx]}
        if cfg.contrastive_weight > 0:
            a, b = two_views_batch(templates[idx], cfg.augment, generator)
            batch["views"] = torch.cat([a, b])
        return batch

    def sigma_px(self, record: PairRecord) -> float:
        """The pair's noise std in search-crop pixels (the loader asks pair by pair)."""
        return float(self.sigmas_px([record])[0])

    def sigmas_px(self, records: Sequence[PairRecord]) -> np.ndarray:
        """The pairs' noise stds in search-crop pixels: the stored pairs' noise (configured,
        or estimated and scaled to each pair's crop) and label_noise, added in squares as
        independent noises do."""
        cfg = self.cfg
        if self.noise is None:
            stored = np.full(len(records), cfg.loss.noise_px())
        else:
            per_pair = cfg.loss.noise == "pair"
            stored = stored_sigmas_px(records, self.noise.rel, cfg.pairs, per_pair)
        return np.hypot(stored, cfg.label_noise)

    def _resolve_noise(self, records: Sequence[PairRecord]) -> dict[str, float | str]:
        """The noise this run trains with, said in one log line and returned as params."""
        cfg = self.cfg
        if self.noise is None:  # a number: the same std for every pair, no pair read
            sigmas = np.atleast_1d(np.hypot(cfg.loss.noise_px(), cfg.label_noise))
        else:
            sigmas = self.sigmas_px(records)
        params = noise_params(sigmas, self.noise)
        log.info(describe_noise(cfg.loss.noise, cfg.label_noise, params))
        return params

    def labeled_x_box(self, record: PairRecord) -> tuple:
        """The box a pair is trained on in x.jpg: as stored, or moved by label_noise."""
        cfg = self.cfg
        return noisy_x_box(record, cfg.label_noise, cfg.train.seed, cfg.pairs.instance)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        cfg = self.cfg
        views = batch["views"].float() if "views" in batch else None
        logits, emb = model(batch["z"].float(), batch["x"].float(), views)
        # the losses in fp32 whatever the forward's precision (log-likelihoods of small
        # probabilities lose their digits in bf16)
        nr = response_loss(
            cfg.loss.kind, logits.float(), batch["offset"], batch["sigma"], radius=cfg.loss.radius
        )
        # read on the host at log steps only
        metrics = {"loss_response": nr.detach(), "noise_sigma_px": batch["sigma"].mean()}
        if emb is None:
            return nr, metrics
        a, b = emb.float().chunk(2)
        contrastive = info_nce(a, b, cfg.tau)
        metrics["loss_contrastive"] = contrastive.detach()
        metrics["negative_similarity"] = negative_similarity(a.detach(), b.detach())
        return nr + cfg.contrastive_weight * contrastive, metrics

    def export(self, model: nn.Module, folder: str) -> None:
        export_net(unwrap(model).net, self.cfg.model, folder)

    def picture(self, model_file: Path, run_dir: Path) -> Path:
        rng = np.random.default_rng(0)
        samples = []
        for pair in itertools.islice(pair_stream(self.cfg.data, 0, 0, resampled=False), 4):
            z, x, offset = make_pair(
                pair.z,
                np.array(pair.record.z_box),
                pair.x,
                np.array(pair.record.x_box),
                self.cfg.pairs,
                rng,
            )
            z, x = to_chw(z[None])[0], to_chw(x[None])[0]
            samples.append({"z": z, "x": x, "offset": torch.from_numpy(offset)})
        return plot_responses(
            model_file, samples, run_dir / "responses.png", self.cfg.pairs.instance
        )


def _as_images(pool: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The pool's crops as N x H x W x 3 uint8 arrays and its boxes as float64, for OpenCV."""
    return {
        "z_hwc": pool["z"].permute(0, 2, 3, 1).cpu().numpy(),
        "x_hwc": pool["x"].permute(0, 2, 3, 1).cpu().numpy(),
        "z_box": pool["z_box"].cpu().double().numpy(),
        "x_box": pool["x_box"].cpu().double().numpy(),
    }


def exemplar(z: np.ndarray, box: np.ndarray, cfg: PairConfig) -> np.ndarray:
    """A pair's template as the tracker would see it (no augmentation)."""
    side = context_size(box[2], box[3], cfg.context)
    return crop_and_resize(z, box_center(box), side, cfg.exemplar)


STAGE_ADDS = ("projection.",)
"""Keys an init file may lack: stage 3 adds a fresh projection head to a network trained
without one (the supervised baseline)."""


def _check_init(path: str, model: ModelConfig) -> None:
    """Refuse a bad init file on the driver, before any worker starts."""
    _init_state(path, build_model(model), model)


def _init_state(path: str, net: SiamNet, model: ModelConfig) -> dict[str, torch.Tensor]:
    """The init file's weights, refused in one line unless every tensor of it fits `net`
    (built from `model`) and it lacks none but STAGE_ADDS: a loose load of another network
    would keep `net`'s fresh weights wherever a name or shape differs, silently."""
    try:
        state = load_weights(path).state_dict()
    except ValueError as err:
        raise JobError(f"init: {err}") from None
    misfit = _misfit(state, net.state_dict())
    if misfit:
        raise JobError(
            f"init: {path} holds {_architecture(path)}, which does not fit "
            f"model.backbone={model.backbone} width={model.width} ({misfit}); "
            "set model.* as the init was trained"
        )
    return state


def _misfit(state: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor]) -> str:
    """Why `state` cannot fill `wanted` ('' when it can)."""
    for key, tensor in state.items():
        if key not in wanted:
            return f"{key} has no place in it"
        if tensor.shape != wanted[key].shape:
            return f"{key} is {list(tensor.shape)}, not {list(wanted[key].shape)}"
    missing = [key for key in wanted if key not in state and not key.startswith(STAGE_ADDS)]
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]}"
    return ""


def _architecture(path: str) -> str:
    """'backbone=alexnet width=0.5', from the config saved in a model file."""
    # the file has just loaded with load_weights: it holds plain data and a config
    config = torch.load(path, map_location="cpu", weights_only=True)["config"]
    return f"backbone={config.get('backbone')} width={config.get('width')}"


def pair_stream(
    data: str, shuffle: int, seed: int, resampled: bool = True, skips: SkipCounter | None = None
):
    """Decoded pairs; a damaged one (a crop failing its CRC-32) is skipped and counted."""
    return clip_stream(
        data, resampled=resampled, shuffle=shuffle, seed=seed, decode=decode_pair, skips=skips
    )
