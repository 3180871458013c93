"""How mining runs: where seeds come from, which tracks are kept, and the tracker that follows
them. Its own module so that the proposers and the miner both read it without importing
each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from pul.tracker import TrackerConfig

Proposer = Literal["random", "objectness", "motion"]


@dataclass
class MiningConfig:
    proposer: Proposer = "motion"
    """Seed boxes: 'random' (textured boxes anywhere), 'objectness' (boxes whose BD
    embedding differs most from that of their surrounding ring) or 'motion' (boxes on what
    moves differently from the camera-compensated background, then objectness)."""
    seeds_per_clip: int = 4
    """Seed boxes tracked per clip (fewer when too few candidates pass the texture test)."""
    candidates: int = 64
    """Random candidate boxes drawn per clip, before the texture test, scoring and NMS."""
    seed_min: float = 0.1
    """Smallest seed size sqrt(w h), as a fraction of the frame's shorter side."""
    seed_max: float = 0.3
    """Largest seed size sqrt(w h), as a fraction of the frame's shorter side."""
    max_aspect: float = 2.0
    """Seed aspect ratios w / h lie in [1 / max_aspect, max_aspect] (log-uniform)."""
    min_texture: float = 4.0
    """Seeds with a mean absolute grey gradient (|dx| + |dy|, grey levels per pixel) below
    this are flat and never tracked."""
    refine_steps: int = 2
    """Rounds of local search that move each objectness seed onto the best-scoring nearby
    box (shifts of 1/4 then 1/8 of its size, ...); 0 keeps the random candidates."""
    nms_iou: float = 0.3
    """Seeds overlap each other by at most this intersection over union."""
    motion_gap: int = 2
    """motion proposer: frames between the seed frame and the frame its flow goes to."""
    min_motion: float = 1.0
    """motion proposer: residual motion (pixels over motion_gap frames) that counts as
    moving, both per pixel and for a box's inside-minus-ring contrast."""
    objectness_weight: float = 2.0
    """motion proposer: pixels of motion contrast one unit of objectness is worth (it
    ranks the boxes that do not move)."""
    still_seeds: bool = True
    """motion proposer: fill the clip's seeds with boxes that do not move (ranked by
    objectness) when fewer moving ones are found; off: moving seeds only."""
    gaps: tuple[int, ...] = (2, 4, 8, 16)
    """Frame distances from the seed frame at which pairs are emitted (increasing)."""
    min_confidence: float = 0.5
    """Smallest response peak along the track, relative to the template's peak on its own
    seed frame (1 = as good as matching itself)."""
    max_cycle_error: float = 0.1
    """Largest cycle error (forward then back to the seed frame), as a fraction of the
    seed's size sqrt(w h)."""
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    """The SiamFC tracker that follows the seeds (forward and back)."""

    def __post_init__(self) -> None:
        if self.proposer not in get_args(Proposer):
            raise ValueError(f"proposer must be one of {list(get_args(Proposer))}")
        if self.seeds_per_clip < 1 or self.candidates < self.seeds_per_clip:
            raise ValueError("need 1 <= seeds_per_clip <= candidates")
        if not 0.0 < self.seed_min <= self.seed_max <= 1.0:
            raise ValueError(f"need 0 < seed_min <= seed_max <= 1, got {self.seed_min}")
        if self.max_aspect < 1.0:
            raise ValueError(f"max_aspect must be at least 1, got {self.max_aspect}")
        if self.min_texture < 0.0 or not 0.0 <= self.nms_iou <= 1.0 or self.refine_steps < 0:
            raise ValueError("need min_texture >= 0, nms_iou in [0, 1] and refine_steps >= 0")
        if self.motion_gap < 1 or self.min_motion < 0.0 or self.objectness_weight < 0.0:
            raise ValueError("need motion_gap >= 1, min_motion >= 0 and objectness_weight >= 0")
        gaps = list(self.gaps)
        if not gaps or gaps[0] < 1 or any(b <= a for a, b in zip(gaps, gaps[1:], strict=False)):
            raise ValueError(f"gaps must be positive and increasing, got {gaps}")
        if self.min_confidence < 0.0 or self.max_cycle_error <= 0.0:
            raise ValueError("need min_confidence >= 0 and max_cycle_error > 0")
