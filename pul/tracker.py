"""The SiamFC tracking procedure (siamfc-pytorch's `TrackerSiamFC.init/update`), on the device.

Per frame: crop the search region around the last centre at a few scales, correlate them
all with the exemplar features (one forward pass), upsample the responses, penalise scale
changes, blend in a cosine window (a prior against large displacements), and move to the
peak. The size follows the chosen scale, damped by `scale_lr`. How the peak moves the target
is SiamFC's or SiamDW's (`TrackerConfig.procedure`, `pul.target_motion`).

`SiamFCTracker` is `BatchSiamFCTracker` with one sequence: the same code, so a sequence gets
bit-for-bit the same boxes tracked alone or in a batch (on CPU). The crops, the upsampling
and the peak search run on the tracker's device, one host sync per frame;
`pul.plain_tracker.PlainSiamFCTracker` is the host-side (OpenCV + numpy) reference.

Boxes are (x, y, w, h), float, 0-based pixel-edge coordinates (see `pul.crops`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch

from pul.batch_tracker import BatchSiamFCTracker, check_box
from pul.models.resnet22 import CIResNet22
from pul.models.siamese import SiamNet
from pul.tracker_config import TrackerConfig, siamdw_config

__all__ = [
    "SiamFCTracker",
    "TrackLoop",
    "TrackerConfig",
    "check_box",
    "siamdw_config",
    "tracker_config_for",
]


def tracker_config_for(net: SiamNet) -> TrackerConfig:
    """How `net` tracks: SiamDW's procedure and tuned values for a CIResNet-22 (ResPUL, as
    SiamDW tracks CIResNet22-FC), SiamFC's for AlexNet (AlexPUL). METHOD.md, Tracking."""
    return siamdw_config() if isinstance(net.backbone, CIResNet22) else TrackerConfig()


class TrackLoop:
    """`track(frames, box)` for any tracker with `init(frame, box)` and `update(frame)`."""

    def track(
        self, frames: Iterable[np.ndarray], box: Iterable[float]
    ) -> tuple[np.ndarray, list[float]]:
        """Track `box` (given in the first frame) through `frames`.

        Returns the Nx4 boxes (the first is `box`) and the seconds spent on each frame
        (the first frame's time is the exemplar's).
        """
        first = np.asarray(list(box), dtype=np.float64)
        boxes: list[np.ndarray] = []
        seconds: list[float] = []
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            if i == 0:
                self.init(frame, first)
                boxes.append(first)
            else:
                boxes.append(self.update(frame))
            seconds.append(time.perf_counter() - start)
        return np.array(boxes, dtype=np.float64).reshape(-1, 4), seconds


class SiamFCTracker(TrackLoop):
    """got10k-style tracker: `init(frame, box)`, then `update(frame) -> box` per frame.

    Frames are HxWx3 uint8 BGR arrays. The net is moved to `device` and put in eval mode
    (call `net.train()` afterwards to keep training it). After each update, `confidence`
    holds the response peak at the chosen scale (a logit for a net trained with BCE).
    `bf16`: CUDA bf16 autocast for the backbone (see `BatchSiamFCTracker`).
    """

    _KEY = 0

    def __init__(
        self,
        net: SiamNet,
        cfg: TrackerConfig | None = None,
        device: torch.device | str = "cpu",
        bf16: bool = False,
    ) -> None:
        self._batch = BatchSiamFCTracker(net, cfg, device, bf16)
        self.cfg, self.device, self.net = self._batch.cfg, self._batch.device, self._batch.net

    def init(self, frame: np.ndarray, box: Iterable[float]) -> None:
        """Start tracking the (x, y, w, h) box in `frame`; caches the exemplar features."""
        self._batch.init(self._KEY, frame, box)

    def update(self, frame: np.ndarray) -> np.ndarray:
        """Locate the target in the next frame; returns its (x, y, w, h) box (float64)."""
        return self._batch.update({self._KEY: frame})[self._KEY]

    @property
    def confidence(self) -> float:
        """Response peak at the chosen scale in the last update (NaN before the first)."""
        state = self._batch.states.get(self._KEY)
        return state.confidence if state is not None else float("nan")
