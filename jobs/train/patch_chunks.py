"""Stage 1's loader processes: textured patches cut from random frames of the clip stream.

Cutting a patch needs no model, only the frame and the texture test (pul.patches), so it
runs in the loader processes, which hand the trainer chunks of N x 3 x 127 x 127 uint8
patches; augmentation happens on the trainer's device, batched (pul.augment_device). With
`views` set (train.augment_on=loader, the default on CPUs) the process also makes each
patch's two augmented views, with OpenCV (pul.augment), once per patch drawn.
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
from pul.augment import AugmentConfig, two_views
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
        views: AugmentConfig | None = None,
    ) -> None:
        self.data, self.seed, self.shuffle, self.chunk = data, seed, shuffle, chunk
        self.per_frame, self.patches, self.new_skips = per_frame, patches, new_skips
        self.views = views

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
                chunk = {"patches": channels_last_view(patches)}
                if self.views is not None:
                    a, b = two_views(patches, rng, self.views)
                    chunk.update(a=channels_last_view(a), b=channels_last_view(b))
                chunk[SKIPPED] = torch.tensor(skips.take_unreported(), dtype=torch.int64)
                yield chunk
        except (ShardError, JobError) as err:
            yield error_chunk(err)
