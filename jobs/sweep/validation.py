"""The validation AUC a sweep's trials report while they train.

`HeldOutAUC` tracks the first frames of a few labeled sequences with the model as it is at
that step (SiamFC tracking, on the training worker's device) and returns their mean
success AUC as `val_auc`. It runs on rank 0 of the trial's Ray Train workers, every
tc.train.validate_every steps; the other ranks wait for it in the report that follows.

Cost: one tracked frame is one search pass over 3 scales. Timed on this project's 2-core
CPU machine (one thread, other jobs running; HeldOutAUC against a forward-backward pass of
stage 3's network on random crops): 2 sequences x 20 frames take 1.3 s with a width-0.25
AlexNet (31 frames/s) and 6.0 s at full width, each about three training steps of stage 3
at batch 8 (0.44 s and 2.3 s, compute only). So the default 2 x 30 frames every 50 steps
add about 9% to a trial, 3 x 30 (configs/sweeps/noise-batch.yaml) about 13%. Frames are
read once per worker, on the first validation, and kept in memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jobs.evaluation.evaluate import benchmark_sequences, first_box
from pul.inference import tracking_net
from pul.metrics import as_boxes, score_benchmark, score_sequence
from pul.tracker import SiamFCTracker, tracker_config_for
from shards.source import VideoRef, iter_frames


@dataclass
class HeldOutAUC:
    """`(model, step) -> {"val_auc": mean success AUC}` on the first `frames` frames of
    each of `refs` (labeled sequences). Picklable: it is shipped to the training workers."""

    refs: list[VideoRef]
    """The labeled sequences."""
    frames: int
    """Frames tracked of each, from the first."""
    _clips: list[tuple[str, list[np.ndarray], np.ndarray]] | None = field(
        default=None, init=False, repr=False
    )
    """(name, frames, true boxes) of each sequence, read on the first call (on the worker,
    so they are not pickled along)."""

    @classmethod
    def on_benchmark(cls, root: str, layout: str, sequences: int, frames: int) -> HeldOutAUC:
        """The first `sequences` sequences (by name) of the benchmark at `root`."""
        refs = sorted(benchmark_sequences(layout, root, []), key=lambda ref: ref.name)
        return cls(refs=refs[:sequences], frames=frames)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_clips": None}

    def __call__(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        # stage 3 trains its SiamNet inside a module that also embeds the contrastive views
        net = getattr(model, "net", model)
        device = next(net.parameters()).device
        cfg = tracker_config_for(net)
        # a folded eval-mode copy: the training network and its batch norms are untouched
        tracker = SiamFCTracker(tracking_net(net), cfg, device)
        scores = []
        for name, frames, truth in self._sequences():
            boxes, _ = tracker.track(frames, truth[0])
            scores.append(score_sequence(name, boxes, truth))
        return {"val_auc": score_benchmark(scores).auc}

    def _sequences(self) -> list[tuple[str, list[np.ndarray], np.ndarray]]:
        if self._clips is None:
            self._clips = []
            for ref in self.refs:
                first_box(ref)  # refuses a sequence without a box to start from
                frames = [image for _, image in itertools.islice(iter_frames(ref), self.frames)]
                self._clips.append((ref.name, frames, as_boxes(ref.gt)[: len(frames)]))
        return self._clips
