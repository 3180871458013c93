"""Reference trackers that learn nothing: what a learned tracker must clearly beat."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np


class StillTracker:
    """The centre prior: the box never moves from where it was given."""

    def init(self, frame: np.ndarray, box: Iterable[float]) -> None:
        self.box = np.asarray(list(box), dtype=np.float64)

    def update(self, frame: np.ndarray) -> np.ndarray:
        return self.box.copy()

    def track(
        self, frames: Iterable[np.ndarray], box: Iterable[float]
    ) -> tuple[np.ndarray, list[float]]:
        boxes, seconds = [], []
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            if i == 0:
                self.init(frame, box)
            boxes.append(self.update(frame))
            seconds.append(time.perf_counter() - start)
        return np.array(boxes).reshape(-1, 4), seconds
