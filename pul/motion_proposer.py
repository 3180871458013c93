"""The `motion` proposer: seed boxes on what moves by itself, ranked with objectness.

Candidates are the objectness proposer's (random textured boxes) plus the boxes of the
connected regions of residual motion (`pul.motion`), which already sit on the moving
objects. The best by residual-motion contrast (pixels, inside minus ring) are fitted to the
motion by the objectness proposer's local search, with stretches that change the aspect
ratio too (the contrast is cheap: an integral-image lookup per box), then ranked by

    contrast + objectness_weight x objectness

so a box on a moving object wins by its motion, and among still boxes objectness decides,
as in the objectness proposer; non-maximum suppression keeps the best. Boxes whose
contrast is below `min_motion` are only kept to fill the clip's seeds when `still_seeds`
allows it.

Where the evidence is unusable (a clip too short for the motion gap, a cut or a flash
between the two frames, a flat frame), the proposer falls back to objectness alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from pul.mining_config import MiningConfig
from pul.models.siamese import SiamNet
from pul.motion import box_contrast, moving_regions, residual_motion
from pul.proposals import (
    nms,
    objectness,
    propose_objectness,
    refine,
    sample_boxes,
    texture,
)

MOTION_REFINE = 5
"""Rounds of local search fitting each candidate to the motion (steps of 1/4 of its size
down to 1/64)."""


@torch.inference_mode()
def propose_motion(
    frames: Sequence[np.ndarray],
    seed_frame: int,
    net: SiamNet,
    cfg: MiningConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Up to cfg.seeds_per_clip boxes (k x 4) in frames[seed_frame], moving ones first."""
    frame = frames[seed_frame]
    later = min(seed_frame + cfg.motion_gap, len(frames) - 1)
    motion = residual_motion(frame, frames[later]) if later > seed_frame else None
    if motion is None:
        return propose_objectness(frame, net, cfg, rng)
    magnitude = motion.magnitude
    contrast = partial(box_contrast, magnitude)
    short = min(frame.shape[:2])
    regions = moving_regions(
        magnitude, cfg.min_motion, min_area=int((0.5 * cfg.seed_min * short) ** 2)
    )
    candidates = np.concatenate([sample_boxes(frame.shape, cfg.candidates, cfg, rng), regions])
    candidates = candidates[texture(frame, candidates) >= cfg.min_texture]
    if len(candidates) == 0:
        return candidates
    # the contrast costs one integral-image lookup per box: fit the boxes to the motion
    # closely (more rounds, free aspect), then let objectness rank them in one forward pass
    scores = contrast(candidates)
    keep = nms(candidates, scores, cfg.nms_iou, 4 * cfg.seeds_per_clip)
    boxes, scores = refine(
        frame.shape, candidates[keep], scores[keep], contrast, MOTION_REFINE, stretch=True
    )
    moving = scores >= cfg.min_motion
    scores = scores + cfg.objectness_weight * objectness(frame, boxes, net)
    keep = nms(boxes, scores, cfg.nms_iou, cfg.seeds_per_clip)
    boxes, moving = boxes[keep], moving[keep]
    return boxes if cfg.still_seeds else boxes[moving]
