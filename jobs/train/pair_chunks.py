"""Stage 3's loader processes: mined pairs read, checked and decoded, in chunks of tensors.

A chunk holds `chunk` pairs: both stored crops as uint8 (z: N x 3 x 255 x 255, x: N x 3 x
384 x 384, see shards/pairs.py), their boxes in those crops' pixels, the temporal gap and
each pair's noise std; the trainer cuts and augments them for each batch (batched on its
GPU, or with OpenCV on CPUs: train.augment_on).

Pairs beyond the curriculum's gap limit are dropped here, before they cost a transfer: the
limit lives in shared memory, raised by the trainer as training goes on (it only grows, so
no chunk made earlier holds a pair the trainer would refuse).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from jobs.errors import JobError
from jobs.train.damage import SKIPPED
from jobs.train.loading import error_chunk, process_seed
from jobs.train.shared import READ_BOUND, channels_last_view
from shards.errors import ShardError
from shards.pairs import Box, PairRecord, PairSample, decode_pair, decode_record
from shards.reader import SkipCounter, clip_stream


class PairChunks(IterableDataset):
    def __init__(
        self,
        data: str,
        seed: int,
        shuffle: int,
        chunk: int,
        gap_limit: torch.Tensor,
        sigma_of: Callable[[PairRecord], float],
        new_skips: Callable[[], SkipCounter],
        x_box_of: Callable[[PairRecord], Box] | None = None,
    ) -> None:
        """`gap_limit`: a 1-element int tensor in shared memory; `sigma_of`: a pair's noise
        std in search-crop pixels; `new_skips`: each process's own damage counter;
        `x_box_of`: the box the pair is labeled with in x.jpg (label_noise.py moves it)."""
        self.data, self.seed, self.shuffle, self.chunk = data, seed, shuffle, chunk
        self.gap_limit, self.sigma_of, self.new_skips = gap_limit, sigma_of, new_skips
        self.x_box_of = x_box_of or stored_x_box

    def __iter__(self) -> Iterator[dict[str, Any]]:
        skips = self.new_skips()
        seed = int(np.random.SeedSequence(process_seed(self.seed)).generate_state(1)[0])
        near = NearPairs(self.gap_limit, READ_BOUND * self.chunk)
        stream = clip_stream(
            self.data, resampled=True, shuffle=self.shuffle, seed=seed, decode=near,
            skips=skips,
        )  # fmt: skip
        pairs = iter(stream)
        try:
            while True:
                yield self._chunk(pairs, skips)
        except (ShardError, JobError) as err:
            yield error_chunk(err)

    def _chunk(self, pairs: Iterator[PairSample], skips: SkipCounter) -> dict[str, Any]:
        taken = list(itertools.islice(pairs, self.chunk))
        return {
            "z": _chw([p.z for p in taken]),
            "x": _chw([p.x for p in taken]),
            "z_box": torch.tensor([p.record.z_box for p in taken], dtype=torch.float32),
            "x_box": torch.tensor([self.x_box_of(p.record) for p in taken], dtype=torch.float32),
            "gap": torch.tensor([p.record.gap for p in taken], dtype=torch.int32),
            "sigma": torch.tensor([self.sigma_of(p.record) for p in taken], dtype=torch.float32),
            SKIPPED: torch.tensor(skips.take_unreported(), dtype=torch.int64),
        }


def stored_x_box(record: PairRecord) -> Box:
    return record.x_box


class NearPairs:
    """The stream's decoder: a pair within the gap limit, decoded; one beyond it, dropped
    from its record alone, before its crops cost a JPEG decode. Gives up (JobError) after
    `bound` pairs in a row beyond the limit: an endless stream must not spin forever."""

    def __init__(self, gap_limit: torch.Tensor, bound: int) -> None:
        self.gap_limit, self.bound, self.beyond = gap_limit, bound, 0

    def __call__(self, sample: dict[str, Any]) -> PairSample | None:
        limit = int(self.gap_limit[0])
        if decode_record(sample).gap > limit:
            self.beyond += 1
            if self.beyond >= self.bound:
                raise JobError(
                    f"none of {self.beyond} pairs read in a row has a gap of at most {limit} "
                    "frames: lower pool or raise gap_start"
                )
            return None
        self.beyond = 0
        return decode_pair(sample)


def _chw(images: list[np.ndarray]) -> torch.Tensor:
    """HxWx3 uint8 arrays -> N x 3 x H x W uint8 (channels_last_view: no copy here)."""
    return channels_last_view(np.stack(images))
