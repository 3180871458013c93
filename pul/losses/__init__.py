"""Losses on response maps: the SiamFC `bce` and the noise-robust family (METHOD.md, Stage 3)."""

from pul.losses.bce import balanced_bce
from pul.losses.config import LossConfig
from pul.losses.noise import sigma_from_cycle_errors
from pul.losses.nr import response_loss

__all__ = [
    "LossConfig",
    "balanced_bce",
    "response_loss",
    "sigma_from_cycle_errors",
]
