"""Training pairs for Siamese trackers: a template crop, a search crop, and the target offset.

The same cropping serves every stage that learns from pairs: the supervised baseline (boxes
from ground truth) and TC learning (boxes mined by stage 2, hence noisy). The search crop is
shifted and scaled at random, so the target is not always at the centre; the returned
offset says where it is, in search-crop pixels from the centre. The random part of a pair is
a `PairDraw` (`draw_pair`); `make_pair` also takes a given one, which is how
pul/pairs_device.py (the same crops for a batch, on a device) is checked against this path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pul.crops import box_center, context_size, crop_and_resize


@dataclass
class PairConfig:
    exemplar: int = 127
    """Template crop size in pixels."""
    instance: int = 255
    """Search crop size in pixels."""
    context: float = 0.5
    """Context margin around the box, as a fraction of (w + h) (SiamFC)."""
    max_gap: int = 16
    """Largest frame distance between the template and the search frame of a pair."""
    max_shift: int = 16
    """Largest random shift of the target away from the search-crop centre, in pixels."""
    stretch: float = 0.05
    """Random scale change of the search crop, +/- this fraction (SiamFC's RandomStretch)."""
    gray_prob: float = 0.1
    """Probability that both crops of a pair are turned gray."""

    def __post_init__(self) -> None:
        if self.exemplar < 16 or self.instance <= self.exemplar:
            raise ValueError(
                f"need 16 <= exemplar < instance, got {self.exemplar}, {self.instance}"
            )
        if self.max_gap < 0 or self.max_shift < 0:
            raise ValueError("max_gap and max_shift must be >= 0")
        if not 0 <= self.stretch < 0.5 or not 0 <= self.gray_prob <= 1:
            raise ValueError("stretch must be in [0, 0.5) and gray_prob in [0, 1]")


@dataclass
class PairDraw:
    """The random part of one pair."""

    scale: float
    """Stretch of the search crop, in 1 +/- cfg.stretch."""
    shift: np.ndarray
    """(2,) target offset (x, y) from the search-crop centre, search-crop pixels."""
    gray: bool
    """Both crops turned gray."""


def draw_pair(rng: np.random.Generator, cfg: PairConfig) -> PairDraw:
    """The random part of one pair, drawn in the order make_pair has always drawn it."""
    scale = 1.0 + rng.uniform(-cfg.stretch, cfg.stretch)
    shift = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2)
    return PairDraw(scale, shift, bool(rng.random() < cfg.gray_prob))


def make_pair(
    frame_z: np.ndarray,
    box_z: np.ndarray,
    frame_x: np.ndarray,
    box_x: np.ndarray,
    cfg: PairConfig,
    rng: np.random.Generator | None,
    draw: PairDraw | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(template HxWx3 uint8, search HxWx3 uint8, target offset (x, y) in search pixels).

    draw: the random part to apply (then rng is not used); None draws it from rng.
    """
    z_size = context_size(box_z[2], box_z[3], cfg.context)
    template = crop_and_resize(frame_z, box_center(box_z), z_size, cfg.exemplar)

    if draw is None:
        draw = draw_pair(rng, cfg)
    x_size = (
        context_size(box_x[2], box_x[3], cfg.context) * cfg.instance / cfg.exemplar * draw.scale
    )
    shift = np.asarray(draw.shift, dtype=np.float64)
    pixels_per_out = x_size / cfg.instance
    centre = np.asarray(box_center(box_x)) - shift * pixels_per_out
    search = crop_and_resize(frame_x, centre, x_size, cfg.instance)
    if draw.gray:
        template, search = _gray(template), _gray(search)
    return template, search, shift.astype(np.float32)


def _gray(image: np.ndarray) -> np.ndarray:
    gray = image.mean(axis=2, keepdims=True).astype(np.uint8)
    return np.repeat(gray, 3, axis=2)
