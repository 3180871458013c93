"""Random boxes inside a frame: the candidates of patch sampling and of seed proposals."""

from __future__ import annotations

import numpy as np


def random_boxes(
    frame_hw: tuple[int, int],
    n: int,
    rng: np.random.Generator,
    side_range: tuple[float, float],
    max_aspect: float,
    log_sides: bool = False,
) -> np.ndarray:
    """n x 4 boxes (x, y, w, h, float64), wholly inside the frame.

    sqrt(w h) is `side_range` x the shorter frame side, uniform (or log-uniform with
    `log_sides`, which favours small boxes); the aspect ratio w / h is log-uniform in
    [1 / max_aspect, max_aspect]. All drawn at once: callers use them in order.
    """
    height, width = frame_hw
    low, high = (fraction * min(height, width) for fraction in side_range)
    if log_sides:
        side = np.exp(rng.uniform(np.log(low), np.log(high), n))
    else:
        side = rng.uniform(low, high, n)
    log_aspect = rng.uniform(-np.log(max_aspect), np.log(max_aspect), n)
    w = np.minimum(side * np.exp(log_aspect / 2), width)
    h = np.minimum(side * np.exp(-log_aspect / 2), height)
    x = rng.uniform(0.0, 1.0, n) * (width - w)
    y = rng.uniform(0.0, 1.0, n) * (height - h)
    return np.stack([x, y, w, h], axis=1)
