"""Stage 3's noise std per pair: `loss.noise: auto` or `pair`, resolved against the pairs.

Mining's localisation noise is estimated once, from the kept pairs' cycle errors, relative
to the seed box's size sqrt(w h) (so one number fits objects of every size), undoing the
truncation at mining's `max_cycle_error`. Two fallbacks, each logged as a warning because
the number they give is a guess rather than a measurement:

- fewer than MIN_PAIRS pairs: half the threshold;
- errors crowding the threshold (the truncation cannot be undone): the untruncated
  estimate, biased low.

`auto` gives every pair that one std; `pair` narrows it by the pair's own cycle error
(`pul.losses.noise.pair_sigma`). Both become search-crop pixels through the same factor,
sqrt(w h) x exemplar / context_size of the mined box: the cycle error, relative to the seed
box like the estimate, is scaled as the estimate is, so the two stay in one unit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pul.crops import context_size
from pul.losses import sigma_from_cycle_errors
from pul.losses.noise import pair_sigma
from pul.pairs import PairConfig
from shards.manifest import Manifest
from shards.pairs import PairRecord, decode_record
from shards.reader import clip_stream

log = logging.getLogger(__name__)

MIN_PAIRS = 10
"""Fewer kept pairs than this leave the median of their cycle errors too loose to use."""
DEFAULT_THRESHOLD = 0.1
"""Mining's default max_cycle_error: the threshold assumed when the manifest records none."""


@dataclass(frozen=True)
class NoiseEstimate:
    rel: float
    """Per-axis std of one localisation, as a fraction of the box's sqrt(w h)."""
    how: str
    """'truncated' (mining's threshold undone), 'untruncated' (no threshold recorded), or a
    fallback: 'few_pairs' (half the threshold), 'crowded' (errors crowd the threshold)."""
    pairs: int
    """Pairs whose cycle errors it was estimated from."""


def read_records(data: str) -> list[PairRecord]:
    """Every pair record of a pair set (damaged records are skipped); the crops stay unread."""
    return list(clip_stream(data, decode=decode_record))


def mining_threshold(manifest: Manifest) -> float | None:
    """Mining's max_cycle_error (relative to the seed size), None where the set has none."""
    return manifest.config.get("mining", {}).get("max_cycle_error")


def relative_cycle_errors(records: Sequence[PairRecord]) -> np.ndarray:
    """Each pair's cycle error as a fraction of its seed box's sqrt(w h) (mining's unit)."""
    return np.array(
        [r.cycle_error / np.sqrt(r.seed_box[2] * r.seed_box[3]) for r in records], dtype=float
    )


def estimate_noise(records: Sequence[PairRecord], threshold: float | None) -> NoiseEstimate:
    """Mining's localisation noise from the pairs' cycle errors; a fallback says so in the log."""
    errors = relative_cycle_errors(records)
    if len(errors) < MIN_PAIRS:
        rel = 0.5 * (threshold or DEFAULT_THRESHOLD)
        log.warning(
            "loss.noise: only %d mined pairs (fewer than %d) to estimate the noise from; "
            "fallback few_pairs: half the cycle-error threshold, sigma = %.4g x sqrt(w h)",
            len(errors), MIN_PAIRS, rel,
        )  # fmt: skip
        return NoiseEstimate(rel, "few_pairs", len(errors))
    if threshold is None:
        return NoiseEstimate(float(sigma_from_cycle_errors(errors)), "untruncated", len(errors))
    try:
        rel = float(sigma_from_cycle_errors(errors, max_error_px=threshold))
    except ValueError:  # errors crowd the threshold: the truncation cannot be undone
        rel = float(sigma_from_cycle_errors(errors))
        log.warning(
            "loss.noise: the cycle errors of %d pairs crowd the threshold %.4g, so mining's "
            "truncation cannot be undone; fallback crowded: the untruncated estimate (biased "
            "low), sigma = %.4g x sqrt(w h)",
            len(errors), threshold, rel,
        )  # fmt: skip
        return NoiseEstimate(rel, "crowded", len(errors))
    return NoiseEstimate(rel, "truncated", len(errors))


def relative_noise(data: str, manifest: Manifest) -> float:
    """Mining's localisation noise std of the pair set `data`, relative to sqrt(w h)."""
    return estimate_noise(read_records(data), mining_threshold(manifest)).rel


def crop_scales(records: Sequence[PairRecord], pairs: PairConfig) -> np.ndarray:
    """Search-crop pixels per unit of relative error, for each pair's mined box: the crop
    shows the box at exemplar / context_size pixels per box pixel (in any unit: x_box is in
    x.jpg's pixels, and the ratio does not depend on the unit)."""
    return np.array(
        [
            np.sqrt(w * h) * pairs.exemplar / context_size(w, h, pairs.context)
            for w, h in (r.x_box[2:] for r in records)
        ],
        dtype=float,
    )


def stored_sigmas_px(
    records: Sequence[PairRecord], estimate: float, pairs: PairConfig, per_pair: bool
) -> np.ndarray:
    """Each pair's noise std in its search-crop pixels, from the relative `estimate`: the
    same for every pair of a box shape, or (`per_pair`) narrowed by the pair's cycle error."""
    scales = crop_scales(records, pairs)
    if not per_pair:
        return estimate * scales
    # pair_sigma is homogeneous in its two lengths: narrowing in relative units and then
    # scaling is the same as scaling both to pixels first
    return pair_sigma(estimate, relative_cycle_errors(records)) * scales


def noise_params(sigmas_px: np.ndarray, estimate: NoiseEstimate | None) -> dict[str, float | str]:
    """What the run logs as params about the noise it trains with: the per-pair std's mean
    and median over the pair set (search-crop pixels, label_noise included), and for an
    estimated noise the relative std, how it was estimated and from how many pairs."""
    params: dict[str, float | str] = {}
    if len(sigmas_px):  # a set without pairs has no std to average (and trains on nothing)
        params["noise_sigma_px_mean"] = float(np.mean(sigmas_px))
        params["noise_sigma_px_median"] = float(np.median(sigmas_px))
    if estimate is not None:
        params.update(
            noise_rel=estimate.rel, noise_estimate=estimate.how, noise_pairs=estimate.pairs
        )
    return params


def describe_noise(noise: float | str, label_noise: float, params: dict[str, float | str]) -> str:
    """The log line of the noise a run trains with (`params` from noise_params)."""
    parts = []
    if "noise_rel" in params:
        parts.append(
            f"sigma = {params['noise_rel']:.4g} x sqrt(w h) ({params['noise_estimate']}, "
            f"from {params['noise_pairs']} pairs)"
        )
    if "noise_sigma_px_mean" in params:
        parts.append(
            f"per pair {params['noise_sigma_px_mean']:.3g} px mean, "
            f"{params['noise_sigma_px_median']:.3g} px median in the search crop"
            + (f" (label_noise {label_noise:g} px included)" if label_noise else "")
        )
    return f"loss.noise={noise}: " + "; ".join(parts)
