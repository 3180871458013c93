"""Which response-map loss TC learning uses, and how noisy it assumes the mined centres are."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from pul.losses.nr import LossKind


@dataclass
class LossConfig:
    kind: LossKind = "nr"
    """Response-map loss: 'bce' (hard labels at the mined centre, the SiamFC baseline),
    'soft_bce' (-E[g], labels blurred by the noise), 'nr' (the NR loss, clamped 2nd-order
    Taylor form) or 'nr_exact' (-log E[exp g])."""
    noise: float | Literal["auto"] = "auto"
    """Std per axis of the mined centres' error, in search-crop pixels: a number of pixels
    (0 = exact labels), or 'auto' to estimate it from the mined pairs' cycle errors."""
    radius: float = 16.0
    """Radius of a label map's positive disc, in search-crop pixels (SiamFC: 16, two cells)."""

    def __post_init__(self) -> None:
        if self.kind not in get_args(LossKind):
            raise ValueError(f"kind must be one of {list(get_args(LossKind))}, got {self.kind!r}")
        if isinstance(self.noise, str) and self.noise != "auto":
            try:  # a number written as text ("8") is still a number of pixels
                self.noise = float(self.noise)
            except ValueError:
                raise ValueError(
                    f"noise must be a number of pixels or 'auto', got {self.noise!r}"
                ) from None
        if self.noise != "auto":
            if isinstance(self.noise, bool) or not isinstance(self.noise, float | int):
                raise ValueError(f"noise must be a number of pixels or 'auto', got {self.noise!r}")
            if not (math.isfinite(self.noise) and self.noise >= 0):
                raise ValueError(f"noise must be finite and >= 0 pixels, got {self.noise}")
            self.noise = float(self.noise)
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"radius must be positive, got {self.radius}")

    def noise_px(self, estimate: float | None = None) -> float:
        """The noise std in pixels: the configured number, or `estimate` when noise is 'auto'."""
        if self.noise != "auto":
            return float(self.noise)
        if estimate is None:
            raise ValueError("noise is 'auto' but no estimate from the cycle errors was given")
        if not (math.isfinite(estimate) and estimate >= 0):
            raise ValueError(f"the noise estimate must be finite and >= 0, got {estimate}")
        return float(estimate)
