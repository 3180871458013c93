"""The noise prior of the NR loss: where the true target may be, given a mined centre.

A mined centre c is off by eps ~ N(0, sigma^2 I) pixels of the search crop (METHOD.md,
Stage 3). The loss needs expectations over eps, so the Gaussian is discretised on a square
grid of K offsets with weights p_k (point samples of the density, normalised to sum to 1).

Grid trade-off: the spacing is stride / 2 and the grid covers +/- 3 sigma, with at most
`max_side` points per axis (K <= max_side^2, 121 by default). A label map only changes when
the shifted label disc crosses a response cell, and cells are `stride` pixels apart, so a
spacing much finer than stride / 2 mostly repeats label maps already in the sum, while a
coarser one skips some. The cost is B x K x S x S cells per step (64 x 121 x 17 x 17 = 2.2M),
small next to the backbone. Above the cap (sigma > 5 * stride / 6, 6.7 px at stride 8) the
spacing grows to 0.6 sigma: the prior's std stays right (truncation at 3 sigma makes it
1.3% small), but the label maps are sampled more sparsely (30 px apart at sigma = 50);
raise `max_side` for large noise if that matters.

`sigma_from_cycle_errors` is the `noise: auto` estimate from the cycle (forward-backward)
errors that TC mining measures; `pair_sigma` narrows it for a pair whose cycle error is known.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MAX_SIDE = 11
"""Grid points per axis at most (K <= 121)."""


def grid_side(sigma_px: float, stride: int = 8, max_side: int = MAX_SIDE) -> int:
    """Points per axis (odd) of the grid for `sigma_px`: +/- 3 sigma at spacing stride / 2."""
    if sigma_px <= 0:
        return 1
    half = math.ceil(3.0 * sigma_px / (stride / 2))
    return min(2 * half + 1, max_side)


def noise_grid(
    sigma_px: torch.Tensor, stride: int = 8, max_side: int = MAX_SIDE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair discretised priors on one grid shape: offsets B x K x 2 (x, y) px, weights B x K.

    K is set by the largest sigma of the batch; each pair keeps spacing
    max(stride / 2, 3 sigma_b / half) on that shape, so a pair with a smaller sigma gets the
    same fine spacing and near-zero weights far out, and sigma_b = 0 puts all its weight on
    (0, 0). One host sync per call: the grid size depends on the data.
    """
    if max_side < 1 or max_side % 2 == 0:
        raise ValueError(f"max_side must be odd and positive, got {max_side}")
    sigma = sigma_px.to(torch.float32)  # B
    low, high = torch.stack(torch.aminmax(sigma)).tolist()  # the one host sync
    if not (math.isfinite(high) and low >= 0):
        raise ValueError(f"sigma_px must be finite and >= 0, got values in [{low}, {high}]")
    half = (grid_side(high, stride, max_side) - 1) // 2
    steps = torch.arange(-half, half + 1, device=sigma.device, dtype=torch.float32)
    uy, ux = torch.meshgrid(steps, steps, indexing="ij")
    units = torch.stack([ux, uy], dim=-1).reshape(-1, 2)  # K x 2, in grid steps
    spacing = (3.0 * sigma / max(half, 1)).clamp(min=stride / 2)  # B
    offsets = units[None] * spacing[:, None, None]  # B x K x 2
    # log density -|offset|^2 / (2 sigma^2); sigma is floored so sigma = 0 gives a one-hot
    # at (0, 0) without 0 / 0 (the other offsets get log weights below -1e6).
    ratio = spacing / sigma.clamp(min=1e-3)  # B
    log_p = -0.5 * (units**2).sum(-1)[None] * ratio[:, None] ** 2  # B x K
    return offsets, torch.softmax(log_p, dim=-1)


def noise_offsets(
    sigma_px: float, stride: int = 8, max_side: int = MAX_SIDE
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior for one sigma: offsets K x 2 float32 pixels (x, y) and weights K summing to 1.

    sigma_px = 0 gives the single offset (0, 0) with weight 1.
    """
    if not math.isfinite(sigma_px) or sigma_px < 0:
        raise ValueError(f"sigma_px must be finite and >= 0, got {sigma_px}")
    offsets, weights = noise_grid(torch.tensor([sigma_px]), stride, max_side)
    return offsets[0], weights[0]


def sigma_from_cycle_errors(errors_px: np.ndarray, max_error_px: float | None = None) -> float:
    """Per-axis noise std sigma (pixels) from cycle errors: lengths N, or vectors N x 2.

    Model: the forward and the backward localisation each add an independent isotropic
    Gaussian error of std sigma per axis, so the round-trip error e has per-axis std
    sqrt(2) sigma and |e| is Rayleigh with scale s = sqrt(2) sigma (E|e|^2 = 4 sigma^2).
    Robust estimate (lost tracks make the mean square useless): median|e| = s sqrt(2 ln 2),
    so sigma = median|e| / (2 sqrt(ln 2)).

    Mining keeps a track only while its cycle error passes a threshold, so the recorded
    errors are truncated; pass that threshold as `max_error_px` to undo the downward bias:
    the observed median is then the Rayleigh quantile at F(T) / 2, solved for s by bisection.
    Errors must be in search-crop pixels (the unit of the loss's sigma; mining records frame
    pixels: scale each by the crop's resize factor); NaNs are skipped. The result is the
    noise of one localisation; the pairs that passed the cycle test are less noisy than
    that, see `pair_sigma`.
    """
    errors = np.asarray(errors_px, dtype=np.float64)
    if errors.ndim == 2 and errors.shape[1] == 2:
        errors = np.linalg.norm(errors, axis=1)
    errors = errors[np.isfinite(errors)].ravel()
    if errors.size == 0:
        raise ValueError("no finite cycle errors to estimate the noise from")
    median = float(np.median(errors))
    if max_error_px is None:
        return median / (2.0 * math.sqrt(math.log(2.0)))
    return _sigma_truncated(median, max_error_px)


def _sigma_truncated(median: float, limit: float) -> float:
    """sigma of a Rayleigh truncated at `limit` whose observed median is `median`.

    With u = limit^2 / (2 s^2): median^2 / limit^2 = phi(u) = -log((1 + e^-u) / 2) / u, which
    falls from 1/2 (u -> 0: errors uniform over the disc, no scale left) to 0, and
    phi(u) <= ln 2 / u bounds the root. Then sigma = s / sqrt(2) = limit / (2 sqrt(u)).
    """
    if not limit > 0:
        raise ValueError(f"max_error_px must be positive, got {limit}")
    q = (median / limit) ** 2
    if q >= 0.5:
        raise ValueError("cycle errors look uniform below max_error_px: sigma not identifiable")
    if q == 0.0:
        return 0.0
    lo, hi = 0.0, math.log(2.0) / q
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        phi = -math.log1p(math.expm1(-mid) / 2) / mid
        lo, hi = (mid, hi) if phi > q else (lo, mid)
    return limit / (2.0 * math.sqrt(0.5 * (lo + hi)))


def pair_sigma(sigma_px: float, cycle_errors_px: torch.Tensor) -> torch.Tensor:
    """Per-axis std of a kept pair's label error given its cycle error |e| (B, pixels).

    Same model: the forward error e_f and the round trip e = e_f + e_b are jointly Gaussian,
    so e_f | e ~ N(e / 2, sigma^2 / 2 per axis). Shards record |e| and not its direction;
    averaging e / 2 over directions adds |e|^2 / 8 per axis: sigma_b^2 = sigma^2 / 2 + |e|^2 / 8
    (the moment-matched Gaussian of a ring-blurred error). Over a set of pairs kept below a
    threshold T this averages to sigma^2 - T^2 / (8 (exp(T^2 / (4 sigma^2)) - 1)), between
    sigma^2 / 2 (tight threshold) and sigma^2 (none): the pairs the cycle test kept are the
    better localised ones, and the loss should not blur their labels with the full sigma.
    """
    errors = torch.as_tensor(cycle_errors_px, dtype=torch.float32)
    return (0.5 * sigma_px**2 + errors**2 / 8).sqrt()
