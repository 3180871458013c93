"""Stage 2, temporal correspondence (TC) mining: the BD model tracks seed boxes through a clip.

For each seed box in the seed frame s, a SiamFC tracker on the BD backbone follows it
forward frame by frame. At each gap g of `gaps` the box found in frame s + g is checked by
tracking it back, frame by frame, to frame s (cycle consistency): the distance between the
back-tracked centre and the seed centre is the cycle error. A (seed box, box at s + g) pair
is kept when the cycle error is small and the forward track is confident at every frame up
to s + g; the track stops at the first failure of either test, so a kept pair never lies
beyond a failed one.

Choices made here (METHOD.md leaves them open):

- Seed frame: drawn at random among the frames that leave room for the longest gap
  (0 .. len - max(gaps) - 1; 0 for a shorter clip). Clips are cut at fixed boundaries, so
  their first frame is not special, and varying it spreads the templates over the video.
- Confidence is relative: the response peak at frame t divided by the peak the template
  gets in its own seed frame (the tracker searching frame s from the seed box). The raw
  peak has no fixed scale: it grows with the features' norms, the model's out_scale and
  the texture energy of the template (a busy patch peaks higher than a smooth one), so an
  absolute threshold would need retuning per model and reject smooth objects first. The
  ratio is unit-free: 1 is as good as the template matching itself, and a ratio well below
  it means the appearance changed or the target is gone. Self-matching (rather than
  normalising by the first update) also tests the first frame after the seed.
- Cycle error threshold: relative to the seed size, `max_cycle_error * sqrt(w h)` pixels,
  so small and large seeds are held to the same relative precision.
- Texture: every seed, proposed or passed in, must pass the proposers' texture test.
  A flat patch matches itself everywhere, and on a static flat region both the forward and
  the backward track stand still: the cycle test passes, the confidence ratio stays 1, and
  only the texture test can refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pul.crops import box_center
from pul.mining_config import MiningConfig
from pul.models.siamese import SiamNet
from pul.motion_proposer import propose_motion
from pul.proposals import propose_objectness, propose_random, texture
from pul.tracker import SiamFCTracker, TrackerConfig

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class MinedPair:
    """One mined correspondence: the seed box in the seed frame, the box found `gap` later."""

    seed_frame: int
    """Index of the seed frame within the clip."""
    target_frame: int
    """Index of the frame the box was found in, within the clip (seed_frame + gap)."""
    seed_box: Box
    """The seed (x, y, w, h) in the seed frame."""
    box: Box
    """The mined (x, y, w, h) in the target frame."""
    confidence: float
    """Response peak at the target frame relative to the seed's self-match peak."""
    cycle_error: float
    """Distance in pixels between the seed centre and the back-tracked centre."""
    gap: int
    """target_frame - seed_frame."""
    seed_index: int
    """Which seed of the clip (0, 1, ...): tells apart pairs of the same two frames."""


def mine_clip(
    frames: Sequence[np.ndarray],
    net: SiamNet,
    cfg: MiningConfig,
    rng: np.random.Generator,
    seeds: np.ndarray | None = None,
    seed_frame: int | None = None,
) -> list[MinedPair]:
    """Mined pairs of one clip (frames: BGR uint8), in seed order then gap order.

    seeds: (x, y, w, h) boxes in the seed frame instead of the proposer's; seed_frame: the
    frame they are in (default: drawn with `rng`, see the module doc). The net runs where
    its parameters are.
    """
    if seed_frame is None:
        seed_frame = choose_seed_frame(len(frames), cfg, rng)
    if not 0 <= seed_frame < len(frames):
        raise ValueError(f"seed frame {seed_frame} is outside the clip of {len(frames)} frames")
    frame = frames[seed_frame]
    if seeds is None:
        seeds = propose(frames, seed_frame, net, cfg, rng)
    seeds = np.asarray(seeds, dtype=np.float64).reshape(-1, 4)
    textured = texture(frame, seeds) >= cfg.min_texture
    device = next(net.parameters()).device
    pairs: list[MinedPair] = []
    for n, box in enumerate(seeds):
        if textured[n]:
            pairs += track_seed(frames, seed_frame, box, n, net, cfg, device)
    return pairs


def choose_seed_frame(length: int, cfg: MiningConfig, rng: np.random.Generator) -> int:
    """A frame among those that leave room for the longest gap (0 in a shorter clip)."""
    return int(rng.integers(0, max(1, length - max(cfg.gaps))))


def propose(
    frames: Sequence[np.ndarray],
    seed_frame: int,
    net: SiamNet,
    cfg: MiningConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Seed boxes in frames[seed_frame] (k x 4, k <= cfg.seeds_per_clip) from the
    configured proposer."""
    if cfg.proposer == "motion":
        return propose_motion(frames, seed_frame, net, cfg, rng)
    if cfg.proposer == "objectness":
        return propose_objectness(frames[seed_frame], net, cfg, rng)
    return propose_random(frames[seed_frame], cfg, rng)


def track_seed(
    frames: Sequence[np.ndarray],
    seed_frame: int,
    seed_box: np.ndarray,
    seed_index: int,
    net: SiamNet,
    cfg: MiningConfig,
    device: torch.device,
) -> list[MinedPair]:
    """Track one seed forward, verify at each gap, stop at the first failed test."""
    gaps = [g for g in cfg.gaps if seed_frame + g < len(frames)]
    if not gaps:
        return []
    forward = SiamFCTracker(net, cfg.tracker, device)
    reference = self_match_peak(forward, frames[seed_frame], seed_box)
    if not reference > 0.0:  # a template that does not even match itself: nothing to follow
        return []
    forward.init(frames[seed_frame], seed_box)
    seed_centre = np.array(box_center(seed_box))
    max_error = cfg.max_cycle_error * float(np.sqrt(seed_box[2] * seed_box[3]))
    pairs: list[MinedPair] = []
    for t in range(seed_frame + 1, seed_frame + gaps[-1] + 1):
        box = forward.update(frames[t])
        confidence = forward.confidence / reference
        if confidence < cfg.min_confidence:
            break
        if t - seed_frame not in gaps:
            continue
        back = track_back(frames, t, seed_frame, box, net, cfg.tracker, device)
        cycle_error = float(np.hypot(*(np.array(box_center(back)) - seed_centre)))
        if cycle_error > max_error:
            break
        pairs.append(
            MinedPair(
                seed_frame=seed_frame,
                target_frame=t,
                seed_box=_as_box(seed_box),
                box=_as_box(box),
                confidence=float(confidence),
                cycle_error=cycle_error,
                gap=t - seed_frame,
                seed_index=seed_index,
            )
        )
    return pairs


def self_match_peak(tracker: SiamFCTracker, frame: np.ndarray, box: np.ndarray) -> float:
    """The response peak of the template searching its own frame: the confidence scale."""
    tracker.init(frame, box)
    tracker.update(frame)
    return tracker.confidence


def track_back(
    frames: Sequence[np.ndarray],
    start: int,
    stop: int,
    box: np.ndarray,
    net: SiamNet,
    cfg: TrackerConfig,
    device: torch.device,
) -> np.ndarray:
    """Track `box` of frame `start` back frame by frame; its box in frame `stop` (< start)."""
    tracker = SiamFCTracker(net, cfg, device)
    tracker.init(frames[start], box)
    for t in range(start - 1, stop - 1, -1):
        box = tracker.update(frames[t])
    return box


def _as_box(box: np.ndarray) -> Box:
    x, y, w, h = (float(v) for v in box)
    return x, y, w, h
