"""The plain reference: training the way the original SiamFC code does it.

Everything in the training process, one sample at a time on the CPU with OpenCV, then the
batch to the device: stage 3 decodes pairs from the same shards (tc.pair_stream), cuts each
pair with `make_pair`, the template views with `two_views`, and forms random batches (no
AHM, so no pool and no embedding pass); stage 1 cuts textured patches from a random frame
of each clip (`draw_pool`) and augments them with `two_views`. The same model and loss,
computed in fp32 and NCHW. What it measures is the gain of our data path (loader processes,
batched device crops and views) and compute settings (bf16, channels_last, larger batches)
together.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from bench.throughput_ours import Measured
from bench.throughput_setup import PLAIN, LoopBody, prepared, settings, timed
from jobs.train.compute import Compute
from jobs.train.shared import draw_pool, to_chw
from jobs.train.tc import TCStage, exemplar, pair_stream
from pul.augment import two_views
from pul.pairs import make_pair
from shards.reader import SkipCounter, clip_stream


def tc_batches(stage, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Stage-3 batches made on the CPU, pair by pair (uint8 crops, as a plain loader hands
    them over; the loss turns them into floats on the device)."""
    cfg = stage.cfg
    pairs = iter(pair_stream(cfg.data, cfg.shuffle, seed))
    rng = np.random.default_rng(seed)
    while True:
        chosen = [next(pairs) for _ in range(cfg.train.batch_size)]
        cut = [
            make_pair(p.z, np.array(p.record.z_box), p.x, np.array(p.record.x_box), cfg.pairs, rng)
            for p in chosen
        ]
        z, x, offset = (np.stack(part) for part in zip(*cut, strict=True))
        batch = {
            "z": to_chw(z),
            "x": to_chw(x),
            "offset": torch.from_numpy(offset),
            "sigma": torch.tensor([stage.sigma_px(p.record) for p in chosen]),
        }
        if cfg.contrastive_weight > 0:
            templates = np.stack([exemplar(p.z, p.record.z_box, cfg.pairs) for p in chosen])
            a, b = two_views(templates, rng, cfg.augment)
            batch["views"] = to_chw(np.concatenate([a, b]))
        yield batch


def bd_batches(stage, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Stage-1 batches made on the CPU: patches cut in this process, two views each."""
    cfg = stage.cfg
    clips = iter(clip_stream(cfg.data, resampled=True, shuffle=cfg.shuffle, seed=seed))
    rng = np.random.default_rng(seed)
    skips = SkipCounter()
    while True:
        patches = draw_pool(
            clips, cfg.train.batch_size, cfg.patches_per_frame, cfg.patches, rng, skips
        )
        a, b = two_views(patches, rng, cfg.augment)
        yield {"a": to_chw(a), "b": to_chw(b)}


def reference(stage, device: torch.device, warmup: int, seconds: float) -> Measured:
    """Pairs/s of the plain path for `stage` (a TCStage or a BDStage)."""
    compute = Compute.resolve(PLAIN, device)
    model = prepared(stage, compute)
    body = LoopBody(stage, model, compute, stage.cfg.train)
    make = tc_batches if isinstance(stage, TCStage) else bd_batches
    batches = make(stage)
    timing = timed(lambda i: body(next(batches), i), warmup, seconds, device)
    return Measured(
        timing.rate(stage.cfg.train.batch_size),
        timing.steps,
        timing.seconds,
        None,
        settings(compute),
    )
