"""Training patches for background discrimination (stage 1): template crops of random boxes.

A patch is what a tracker's template would be if someone had drawn that box: a SiamFC
exemplar crop (the box plus context, resized to 127x127), so stage 1 learns on the same
kind of input that stages 2 and 3 feed the backbone.

Boxes are square-ish, at random positions and scales, wholly inside the frame (the context
around them may reach past the border and is padded with the frame's mean colour, as in
SiamFC). Texture criterion **[ours]**: the mean gradient magnitude of the grayscale crop
inside the box, |dI/dx| + |dI/dy| in gray levels per crop pixel, must reach `min_texture`.
Measured on the crop, not the frame, because that is what the network sees (a large box is
downsampled, which sharpens its gradients). A gradient rather than the standard deviation:
a smooth sky gradient has a large std and nothing to discriminate, sensor noise on a flat
wall has a small one either way. Boxes overlapping an accepted box of the same frame by IoU
above `max_iou` are rejected too: two near-copies would later be each other's negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pul.boxes import iou, random_boxes
from pul.crops import average_colour, context_size, crop_and_resize


@dataclass
class PatchConfig:
    size: int = 127
    """Side of a patch in pixels (the template size)."""
    context: float = 0.5
    """Context margin around the box, as a fraction of (w + h) (SiamFC)."""
    min_scale: float = 0.1
    """Smallest box side, as a fraction of the frame's shorter side."""
    max_scale: float = 0.5
    """Largest box side, as a fraction of the frame's shorter side (sides are log-uniform)."""
    max_aspect: float = 1.5
    """Largest aspect ratio w/h or h/w of a box (log-uniform in [1/max_aspect, max_aspect])."""
    min_texture: float = 4.0
    """Smallest mean gradient magnitude |dI/dx| + |dI/dy| (gray levels per crop pixel) of the
    box inside its crop; flatter patches are rejected. 0 keeps every patch."""
    max_iou: float = 0.5
    """Largest IoU between two patches of one frame; 1.0 allows any overlap."""
    tries_per_patch: int = 10
    """Candidate boxes drawn per requested patch before giving up and returning fewer."""

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"size must be at least 16, got {self.size}")
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError(
                f"need 0 < min_scale <= max_scale <= 1, got {self.min_scale}, {self.max_scale}"
            )
        if self.max_aspect < 1:
            raise ValueError(f"max_aspect must be >= 1, got {self.max_aspect}")
        if self.min_texture < 0 or not 0 < self.max_iou <= 1:
            raise ValueError("min_texture must be >= 0 and max_iou in (0, 1]")
        if self.tries_per_patch < 1:
            raise ValueError(f"tries_per_patch must be at least 1, got {self.tries_per_patch}")


def sample_patches(
    frame: np.ndarray, count: int, rng: np.random.Generator, cfg: PatchConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` textured patches of one frame: (N x size x size x 3 uint8, N x 4 boxes).

    frame: HxWx3 uint8. Boxes are (x, y, w, h) float64 in frame pixels. Returns fewer than
    `count` (possibly none) when count * tries_per_patch candidates did not yield enough.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be HxWx3 uint8, got {frame.shape} {frame.dtype}")
    border = average_colour(frame)  # one pass over the frame for all crops
    patches, boxes = [], []
    candidates = random_boxes(
        frame.shape[:2],
        count * cfg.tries_per_patch,
        rng,
        (cfg.min_scale, cfg.max_scale),
        cfg.max_aspect,
        log_sides=True,
    )
    for box in candidates:
        if len(patches) == count:
            break
        if boxes and iou(box, np.asarray(boxes)).max() > cfg.max_iou:
            continue
        side = context_size(box[2], box[3], cfg.context)
        centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
        patch = crop_and_resize(frame, centre, side, cfg.size, border)
        if texture(patch, box[2:] * cfg.size / side) >= cfg.min_texture:
            patches.append(patch)
            boxes.append(box)
    out = np.stack(patches) if patches else np.zeros((0, cfg.size, cfg.size, 3), np.uint8)
    return out, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def texture(patch: np.ndarray, box_wh: np.ndarray) -> float:
    """Mean |dI/dx| + |dI/dy| of the grayscale patch inside the centred box of size box_wh."""
    size = patch.shape[0]
    # Rounded down: a rounding pixel past the box edge must not count as its texture.
    w, h = (min(size, max(2, int(v))) for v in box_wh)
    x0, y0 = (size - w) // 2, (size - h) // 2
    gray = cv2.cvtColor(patch[y0 : y0 + h, x0 : x0 + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Forward differences: 2x1 kernels, so no border handling decides the answer.
    return float(np.abs(np.diff(gray, axis=1)).mean() + np.abs(np.diff(gray, axis=0)).mean())
