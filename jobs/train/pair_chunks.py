"""Stage 3's loader processes: mined pairs read, checked and decoded, in chunks of tensors.

A chunk holds `chunk` pairs: both stored crops as uint8 (z: N x 3 x 255 x 255, x: N x 3 x
384 x 384, see shards/pairs.py), their boxes in those crops' pixels, the temporal gap and
each pair's noise std; the trainer cuts and augments them on its device. With
`CropsInLoader` (train.augment_on=loader, the default on CPUs) the process cuts them itself
with OpenCV instead: the network's crops (z 127, x 255, the target offset), the un-augmented
template for AHM and its two contrastive views, once per pair drawn.

Pairs beyond the curriculum's gap limit are dropped here, before they cost a transfer: the
limit lives in shared memory, raised by the trainer as training goes on (it only grows, so
no chunk made earlier holds a pair the trainer would refuse).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from jobs.errors import JobError
from jobs.train.damage import SKIPPED
from jobs.train.loading import error_chunk, process_seed
from jobs.train.shared import READ_BOUND, channels_last_view
from pul.augment import AugmentConfig, two_views
from pul.crops import box_center, context_size, crop_and_resize
from pul.pairs import PairConfig, make_pair
from shards.errors import ShardError
from shards.pairs import PairRecord, PairSample, decode_pair, decode_record
from shards.reader import SkipCounter, clip_stream


@dataclass(frozen=True)
class CropsInLoader:
    """What a loader process cuts from each pair (pul.pairs.make_pair and pul.augment's
    two views, the CPU versions of pul/pairs_device.py and pul/augment_device.py)."""

    pairs: PairConfig
    augment: AugmentConfig | None
    """The contrastive views' augmentation; None: no views (contrastive_weight 0)."""

    def __call__(self, taken: list[PairSample], rng: np.random.Generator) -> dict[str, Any]:
        made = [
            make_pair(p.z, np.array(p.record.z_box), p.x, np.array(p.record.x_box), self.pairs, rng)
            for p in taken
        ]
        templates = np.stack([exemplar(p, self.pairs) for p in taken])
        out = {
            "z": _chw([m[0] for m in made]),
            "x": _chw([m[1] for m in made]),
            "offset": torch.from_numpy(np.stack([m[2] for m in made])),
            "template": _chw(list(templates)),
        }
        if self.augment is not None:
            a, b = two_views(templates, rng, self.augment)
            out["a"], out["b"] = _chw(list(a)), _chw(list(b))
        return out


def exemplar(pair: PairSample, cfg: PairConfig) -> np.ndarray:
    """The pair's template as the tracker would see it (no augmentation)."""
    box = pair.record.z_box
    return crop_and_resize(
        pair.z, box_center(box), context_size(box[2], box[3], cfg.context), cfg.exemplar
    )


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
        crops: CropsInLoader | None = None,
    ) -> None:
        """`gap_limit`: a 1-element int tensor in shared memory; `sigma_of`: a pair's noise
        std in search-crop pixels; `new_skips`: each process's own damage counter; `crops`:
        cut the crops here (None: the trainer cuts them from the stored ones)."""
        self.data, self.seed, self.shuffle, self.chunk = data, seed, shuffle, chunk
        self.gap_limit, self.sigma_of, self.new_skips = gap_limit, sigma_of, new_skips
        self.crops = crops

    def __iter__(self) -> Iterator[dict[str, Any]]:
        skips = self.new_skips()
        rng = np.random.default_rng(process_seed(self.seed))  # the crops' draws
        seed = int(np.random.SeedSequence(process_seed(self.seed)).generate_state(1)[0])
        near = NearPairs(self.gap_limit, READ_BOUND * self.chunk)
        stream = clip_stream(
            self.data, resampled=True, shuffle=self.shuffle, seed=seed, decode=near,
            skips=skips,
        )  # fmt: skip
        pairs = iter(stream)
        try:
            while True:
                yield self._chunk(pairs, skips, rng)
        except (ShardError, JobError) as err:
            yield error_chunk(err)

    def _chunk(
        self, pairs: Iterator[PairSample], skips: SkipCounter, rng: np.random.Generator
    ) -> dict[str, Any]:
        taken = list(itertools.islice(pairs, self.chunk))
        if self.crops is not None:
            crops = self.crops(taken, rng)
        else:
            crops = {
                "z": _chw([p.z for p in taken]),
                "x": _chw([p.x for p in taken]),
                "z_box": torch.tensor([p.record.z_box for p in taken], dtype=torch.float32),
                "x_box": torch.tensor([p.record.x_box for p in taken], dtype=torch.float32),
            }
        return {
            **crops,
            "gap": torch.tensor([p.record.gap for p in taken], dtype=torch.int32),
            "sigma": torch.tensor([self.sigma_of(p.record) for p in taken], dtype=torch.float32),
            SKIPPED: torch.tensor(skips.take_unreported(), dtype=torch.int64),
        }


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
