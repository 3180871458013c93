"""The `motion` proposer: seed boxes on what moves by itself, ranked with objectness.

Candidates are the objectness proposer's (random textured boxes) plus the boxes of the
connected regions of residual motion (`pul.motion`), which already sit on the moving
objects. Each is scored

    residual-motion contrast (pixels, inside minus ring) + objectness_weight x objectness

so a box on a moving object wins by its motion, and among still boxes objectness decides,
as in the objectness proposer. Boxes are refined by the same local search on that score,
then non-maximum suppression keeps the best. Boxes whose contrast is below `min_motion`
are only kept to fill the clip's seeds when `still_seeds` allows it.

Where the evidence is unusable (a clip too short for the motion gap, a cut or a flash
between the two frames, a flat frame), the proposer falls back to objectness alone.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def score(boxes: np.ndarray) -> np.ndarray:
        return box_contrast(magnitude, boxes) + cfg.objectness_weight * objectness(
            frame, boxes, net
        )

    short = min(frame.shape[:2])
    regions = moving_regions(
        magnitude, cfg.min_motion, min_area=int((0.5 * cfg.seed_min * short) ** 2)
    )
    candidates = np.concatenate([sample_boxes(frame.shape, cfg.candidates, cfg, rng), regions])
    candidates = candidates[texture(frame, candidates) >= cfg.min_texture]
    if len(candidates) == 0:
        return candidates
    scores = score(candidates)
    keep = nms(candidates, scores, cfg.nms_iou, cfg.seeds_per_clip)
    boxes, scores = refine(frame.shape, candidates[keep], scores[keep], score, cfg.refine_steps)
    boxes = boxes[nms(boxes, scores, cfg.nms_iou, cfg.seeds_per_clip)]
    if not cfg.still_seeds:
        boxes = boxes[box_contrast(magnitude, boxes) >= cfg.min_motion]
    return boxes
