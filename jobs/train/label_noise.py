"""Annotation noise put in on purpose: the noise-robustness experiment (supplement Sec. D,
Fig. 6) trains on pairs whose target centres were moved by known noise.

Each pair's target centre moves by an isotropic Gaussian offset of std `label_noise`
search-crop pixels per axis **[ours: the supplement gives the noise in pixels, not its
distribution]**. The offset is drawn from the pair's key and the run's seed, so a pair
keeps the same wrong annotation at every epoch, on every rank and in every loader process,
as a wrongly annotated frame would; a fresh draw each time it is read would average the
noise away.

Moving the box in x.jpg moves the search crop cut around it (pul/pairs.py): the label map
sits on the noisy centre and the target lies off it, as with a wrong annotation.
"""

from __future__ import annotations

import zlib

import numpy as np

from shards.pairs import X_OUT, X_SIDE, Box, PairRecord


def noise_offset(key: str, std_px: float, seed: int) -> np.ndarray:
    """The pair's fixed (dx, dy) in search-crop pixels."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return rng.normal(0.0, std_px, 2)


def noisy_x_box(record: PairRecord, std_px: float, seed: int, instance: int) -> Box:
    """The pair's box in x.jpg, its centre moved by its noise offset (0 px: unchanged).
    x.jpg shows X_OUT / (X_SIDE x instance) of its pixels per search-crop pixel."""
    if std_px == 0:
        return record.x_box
    dx, dy = noise_offset(record.key, std_px, seed) * X_OUT / (X_SIDE * instance)
    x, y, w, h = record.x_box
    return (x + float(dx), y + float(dy), w, h)
