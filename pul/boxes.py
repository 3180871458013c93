"""Boxes (x, y, w, h): their overlap, and random boxes inside a frame (the candidates of patch
sampling and of seed proposals)."""

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


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes (..., 4) and (..., 4), broadcast against each other.

    `iou(a[:, None], b[None])` is the N x M matrix. Boxes must be valid (w, h > 0); the
    metrics mask invalid predictions before calling this.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    union = np.prod(a[..., 2:], axis=-1) + np.prod(b[..., 2:], axis=-1) - inter
    # No eps in the denominator (the OTB toolkit adds one): identical boxes give exactly 1.0.
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_sums(integral: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of an image inside each box (N) and the box's area in whole pixels (N), from the
    image's (H+1) x (W+1) integral (`cv2.integral`). Boxes are cut to the image and widened
    to whole pixels; one integral serves any number of boxes."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip(np.floor(boxes[:, 0]), 0, width).astype(int)
    y0 = np.clip(np.floor(boxes[:, 1]), 0, height).astype(int)
    x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2]), 0, width).astype(int)
    y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3]), 0, height).astype(int)
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return total, (x1 - x0) * (y1 - y0)
