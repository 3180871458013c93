"""The noise prior of the NR loss: where the true target may be, given a mined centre.

A mined centre c is off by eps ~ N(0, sigma^2 I) pixels of the search crop (METHOD.md,
Stage 3), and the loss needs expectations over eps of functions of the label map at c + eps.
That map is piecewise constant in eps: it changes only when the label disc's edge crosses a
response cell's centre. Point samples of the density on a grid miss that structure (the old
11 x 11 grid was off by -7% at sigma = 50 px and +20% below 1 px), so the expectation is
taken in two steps (`pul.losses.nr.pair_loglik`):

- along x, exactly: for a fixed row position t_y, the cells inside the disc change at known
  positions x_j -/+ sqrt(r^2 - (y_i - t_y)^2), so the x-axis splits into intervals of
  constant labels, each weighted by its exact Gaussian mass (normal CDF differences);
- along y, by quadrature on `rows` cells of a window of +/- 4 sigma (cut to the band where a
  disc can touch the map), each node carrying its cell's exact Gaussian mass. After the exact
  x-integration the integrand is continuous in t_y, so a few dozen rows suffice.

Mass beyond the window's cut goes to the empty label map (no positive cell), which is what a
target that far outside the search region gives. `row_prior` computes the y side.

`sigma_from_cycle_errors` is the `noise: auto` estimate from the cycle (forward-backward)
errors that TC mining measures; `pair_sigma` narrows it for a pair whose cycle error is known.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ROWS = 24
"""Quadrature rows along y (the x-axis is integrated exactly)."""
WINDOW = 4.0
"""Half-width of the y window, in sigmas (mass beyond: 6e-5, given to the nearest row)."""


def normal_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """P(lo < Z <= hi) for a standard normal Z, accurate in both tails.

    Phi(hi) - Phi(lo) loses everything to rounding once both are near 1 (float32: beyond
    about 5 sigma a mass of 1e-10 comes out as 6e-8 or 0), so intervals on the right are
    computed as Phi(-lo) - Phi(-hi) instead.
    """
    right = lo > 0
    upper = torch.where(right, -lo, hi)
    lower = torch.where(right, -hi, lo)
    return (torch.special.ndtr(upper) - torch.special.ndtr(lower)).clamp(min=0)


def row_prior(
    centre_y: torch.Tensor, sigma: torch.Tensor, band: float, rows: int = ROWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row positions t_y (B x R) and their Gaussian masses (B x R) for centres and stds (B).

    The rows are the midpoints of `rows` equal cells of [c - 4 sigma, c + 4 sigma] cut to
    [-band, band] (beyond the band no label disc touches the map). Where the window is cut
    by the 4-sigma limit the outer cells reach to infinity, so that tail mass is kept; where
    it is cut by the band, the mass beyond is left out: the caller gives it to the empty map.
    sigma = 0 puts every row at c with all the mass (exact labels).
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    c, s = centre_y, sigma
    lo = torch.maximum(c - WINDOW * s, torch.full_like(c, -band))
    hi = torch.maximum(torch.minimum(c + WINDOW * s, torch.full_like(c, band)), lo)
    steps = torch.linspace(0.0, 1.0, rows + 1, dtype=c.dtype, device=c.device)
    edges = lo[:, None] + (hi - lo)[:, None] * steps  # B x R+1
    nodes = 0.5 * (edges[:, 1:] + edges[:, :-1])
    inf = torch.full_like(c, math.inf)
    outer_lo = torch.where(c - WINDOW * s >= -band, -inf, lo)
    outer_hi = torch.where(c + WINDOW * s <= band, inf, hi)
    edges = torch.cat([outer_lo[:, None], edges[:, 1:-1], outer_hi[:, None]], dim=1)
    z = (edges - c[:, None]) / s.clamp(min=1e-6)[:, None]
    return nodes, normal_mass(z[:, :-1], z[:, 1:])


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


def pair_sigma(
    sigma_px: float, cycle_errors_px: torch.Tensor | np.ndarray
) -> torch.Tensor | np.ndarray:
    """Per-axis std of a kept pair's label error given its cycle error |e| (B, pixels).

    Same model: the forward error e_f and the round trip e = e_f + e_b are jointly Gaussian,
    so e_f | e ~ N(e / 2, sigma^2 / 2 per axis). Shards record |e| and not its direction;
    averaging e / 2 over directions adds |e|^2 / 8 per axis: sigma_b^2 = sigma^2 / 2 + |e|^2 / 8
    (the moment-matched Gaussian of a ring-blurred error). Over a set of pairs kept below a
    threshold T this averages to sigma^2 - T^2 / (8 (exp(T^2 / (4 sigma^2)) - 1)), between
    sigma^2 / 2 (tight threshold) and sigma^2 (none): the pairs the cycle test kept are the
    better localised ones, and the loss should not blur their labels with the full sigma.

    A numpy array gives a float64 array (stage 3's loader asks pair by pair, where a tensor
    per pair costs ten times the arithmetic); anything else gives a float32 tensor.
    """
    errors = cycle_errors_px
    if not isinstance(errors, np.ndarray):
        errors = torch.as_tensor(errors, dtype=torch.float32)
    return (0.5 * sigma_px**2 + errors**2 / 8) ** 0.5
