"""Which response-map loss TC learning uses, and how noisy it assumes the mined centres are."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from pul.losses.nr import LossKind

ESTIMATED = ("auto", "pair")
"""The `noise` values estimated from the mined pairs' cycle errors rather than given."""


@dataclass
class LossConfig:
    kind: LossKind = "nr"
    """Response-map loss: 'bce' (hard labels at the mined centre, the SiamFC baseline),
    'soft_bce' (-E[g], labels blurred by the noise), 'nr' (the NR loss, clamped 2nd-order
    Taylor form) or 'nr_exact' (-log E[exp g])."""
    noise: float | Literal["auto", "pair"] = "auto"
    """Std per axis of the mined centres' error, in search-crop pixels: a number of pixels
    (0 = exact labels); 'auto' to estimate it from the mined pairs' cycle errors (one std,
    relative to the box size, for every pair); or 'pair' for that estimate narrowed by each
    pair's own cycle error, sqrt(sigma^2 / 2 + |e|^2 / 8) (pul.losses.noise.pair_sigma): a
    pair that came back close to its seed gets sharper labels than one that barely passed."""
    radius: float = 16.0
    """Radius of a label map's positive disc, in search-crop pixels (SiamFC: 16, two cells)."""

    def __post_init__(self) -> None:
        if self.kind not in get_args(LossKind):
            raise ValueError(f"kind must be one of {list(get_args(LossKind))}, got {self.kind!r}")
        wanted = f"noise must be a number of pixels, 'auto' or 'pair', got {self.noise!r}"
        if isinstance(self.noise, str) and not self.estimated:
            try:  # a number written as text ("8") is still a number of pixels
                self.noise = float(self.noise)
            except ValueError:
                raise ValueError(wanted) from None
        if not self.estimated:
            if isinstance(self.noise, bool) or not isinstance(self.noise, float | int):
                raise ValueError(wanted)
            if not (math.isfinite(self.noise) and self.noise >= 0):
                raise ValueError(f"noise must be finite and >= 0 pixels, got {self.noise}")
            self.noise = float(self.noise)
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"radius must be positive, got {self.radius}")

    @property
    def estimated(self) -> bool:
        """Whether the noise comes from the mined pairs' cycle errors ('auto' or 'pair')."""
        return isinstance(self.noise, str) and self.noise in ESTIMATED

    def noise_px(self, estimate: float | None = None) -> float:
        """The noise std in pixels: the configured number, or `estimate` when it is estimated."""
        if not self.estimated:
            return float(self.noise)
        if estimate is None:
            raise ValueError(
                f"noise is {self.noise!r} but no estimate from the cycle errors was given"
            )
        if not (math.isfinite(estimate) and estimate >= 0):
            raise ValueError(f"the noise estimate must be finite and >= 0, got {estimate}")
        return float(estimate)
