"""Losses on response maps. `bce` here; the noise-robust family joins it (METHOD.md)."""

from pul.losses.bce import balanced_bce

__all__ = ["balanced_bce"]
