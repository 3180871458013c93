"""Batches of training pairs streamed from clip shards, for any stage that learns from pairs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from jobs.train.damage import SKIPPED
from jobs.train.loading import unwrapped_errors
from pul.pairs import PairConfig, make_pair
from shards.reader import Clip, SkipCounter, clip_stream

BoxesOf = Callable[[Clip], list]
"""Where the boxes of a clip come from: ground truth (supervised) or mining (PUL)."""


def ground_truth_boxes(clip: Clip) -> list:
    return clip.meta.get("gt") or [None] * len(clip)


def stream_seed(seed: int, start_step: int) -> int:
    """The data seed of a rank's stream, new after every resume, distinct across ranks."""
    return seed + 7919 * start_step + 104729 * int(os.environ.get("RANK", 0))


class PairSampler:
    """Clip -> one random pair of its frames, cropped; None when the clip has no usable pair.

    Each DataLoader worker of each rank gets its own seeded generator (created lazily, in
    the process that uses it).
    """

    def __init__(self, cfg: PairConfig, seed: int, boxes_of: BoxesOf = ground_truth_boxes):
        self.cfg, self.seed, self.boxes_of = cfg, seed, boxes_of
        self.rng: np.random.Generator | None = None

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            worker = get_worker_info()
            rank = int(os.environ.get("RANK", 0))
            self.rng = np.random.default_rng([self.seed, rank, worker.id if worker else 0])
        return self.rng

    def __call__(self, clip: Clip) -> dict[str, torch.Tensor] | None:
        rng = self._generator()
        boxes = self.boxes_of(clip)
        usable = [i for i, box in enumerate(boxes) if box is not None and min(box[2:]) > 1]
        if not usable:
            return None
        i = int(rng.choice(usable))
        near = [j for j in usable if abs(j - i) <= self.cfg.max_gap]
        j = int(rng.choice(near))
        z, x, offset = make_pair(
            clip.frame(i), np.asarray(boxes[i]), clip.frame(j), np.asarray(boxes[j]), self.cfg, rng
        )
        return {
            "z": torch.from_numpy(z).permute(2, 0, 1).contiguous(),  # 3 x 127 x 127 uint8
            "x": torch.from_numpy(x).permute(2, 0, 1).contiguous(),  # 3 x 255 x 255 uint8
            "offset": torch.from_numpy(offset),  # 2, target (x, y) from the search centre
        }


def _with_skip_counts(skips: SkipCounter):
    """Stream stage: each pair carries the skips since the previous one. It runs where the
    stream runs (a DataLoader process when loader_workers > 0), where the counter lives."""

    def run(pairs: Iterator[dict]) -> Iterator[dict]:
        for pair in pairs:
            yield {**pair, SKIPPED: skips.take_unreported()}

    return run


def pair_batches(
    data: str,
    cfg: PairConfig,
    batch_size: int,
    seed: int,
    loader_workers: int = 0,
    shuffle: int = 64,
    boxes_of: BoxesOf = ground_truth_boxes,
    skips: SkipCounter | None = None,
    pin_memory: bool = False,
    prefetch: int = 2,
) -> Iterator[dict[str, torch.Tensor]]:
    """An endless stream of batches; every rank draws its own seeded stream of shards.

    A damaged frame is skipped in the stream (the pair is cut inside it) and counted in
    `skips`; every batch carries the count of its samples' process (SKIPPED)."""
    stream = clip_stream(
        data,
        resampled=True,
        shuffle=shuffle,
        seed=seed,
        transform=PairSampler(cfg, seed, boxes_of),
        skips=skips,
    )
    stream.append(_with_skip_counts(stream.skips))
    loader = DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=loader_workers,
        persistent_workers=loader_workers > 0,
        pin_memory=pin_memory,
        prefetch_factor=prefetch if loader_workers > 0 else None,
    )
    while True:
        yield from unwrapped_errors(iter(loader))
