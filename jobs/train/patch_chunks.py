"""Stage 1's loader processes: textured patches cut from random frames of the clip stream.

Cutting a patch needs no model, only the frame and the texture test (pul.patches), so it
runs in the loader processes, which hand the trainer chunks of N x 3 x 127 x 127 uint8
patches; the trainer makes each batch's augmented views (batched on its GPU, or with OpenCV
on CPUs: train.augment_on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from jobs.errors import JobError
from jobs.train.damage import SKIPPED
from jobs.train.loading import error_chunk, process_seed
from jobs.train.shared import channels_last_view, draw_pool
from pul.patches import PatchConfig
from shards.errors import ShardError
from shards.reader import SkipCounter, clip_stream


class PatchChunks(IterableDataset):
    def __init__(
        self,
        data: str,
        seed: int,
        shuffle: int,
        chunk: int,
        per_frame: int,
        patches: PatchConfig,
        new_skips: Callable[[], SkipCounter],
    ) -> None:
        self.data, self.seed, self.shuffle, self.chunk = data, seed, shuffle, chunk
        self.per_frame, self.patches, self.new_skips = per_frame, patches, new_skips

    def __iter__(self) -> Iterator[dict[str, Any]]:
        skips = self.new_skips()
        seed = process_seed(self.seed)
        rng = np.random.default_rng(seed)
        stream_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        stream = clip_stream(
            self.data, resampled=True, shuffle=self.shuffle, seed=stream_seed, skips=skips
        )
        clips = iter(stream)
        try:
            while True:
                patches = draw_pool(clips, self.chunk, self.per_frame, self.patches, rng, skips)
                yield {
                    "patches": channels_last_view(patches),
                    SKIPPED: torch.tensor(skips.take_unreported(), dtype=torch.int64),
                }
        except (ShardError, JobError) as err:
            yield error_chunk(err)
