"""Seed boxes for TC mining: where in a frame to start a track.

Two proposers share one candidate sampler (boxes at random positions, sizes and aspect
ratios, wholly inside the frame) and one texture test (flat boxes are dropped: a patch of
sky or wall matches itself everywhere, so its tracks say nothing):

- `random`: the textured candidates, in the order drawn, without overlaps.
- `objectness`: the textured candidates ranked by how much the BD embedding of the box
  differs from the embedding of its surrounding ring, then greedy NMS. The ring is the box
  enlarged RING times around the same centre with the box itself filled with the ring's
  mean colour, so the two crops share a centre, an aspect ratio and a resampling: what
  differs is whether the box's content is there. A box holding more of its surroundings
  (a piece of a textured wall) embeds like its ring; an object on a background does not.
  Every crop of every candidate goes through the network in one forward pass; then a short
  local search (`refine`, one more pass per round) moves each kept box onto the
  best-scoring box nearby.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pul.boxes import box_sums, iou, random_boxes
from pul.crops import EXEMPLAR_SIZE, average_colour, to_tensor
from pul.mining_config import MiningConfig
from pul.models.siamese import SiamNet

RING = 2.0
"""Side of the ring crop relative to the box's (its area is 4x the box's, 3/4 of it ring)."""
EMBED_SIZE = EXEMPLAR_SIZE
"""Side of the crops embedded by the objectness proposer (BD trains on 127 px patches)."""


def sample_boxes(
    frame_shape: tuple[int, ...], n: int, cfg: MiningConfig, rng: np.random.Generator
) -> np.ndarray:
    """n random (x, y, w, h) boxes wholly inside a frame of shape HxW[xC] (n x 4 float64).

    sqrt(w h) is uniform in [seed_min, seed_max] x the shorter frame side; the aspect ratio
    w / h is log-uniform in [1 / max_aspect, max_aspect].
    """
    return random_boxes(frame_shape[:2], n, rng, (cfg.seed_min, cfg.seed_max), cfg.max_aspect)


def texture(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean absolute grey-level gradient (|dx| + |dy|, grey levels per pixel) in each box.

    One integral image serves every box. A flat wall or sky scores below 2, a flat region
    under strong sensor noise (std 3) about 4, textured regions of photographs 5 to 20.
    """
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    grad = np.zeros_like(grey)
    grad[:, :-1] += np.abs(np.diff(grey, axis=1))
    grad[:-1, :] += np.abs(np.diff(grey, axis=0))
    total, area = box_sums(cv2.integral(grad, sdepth=cv2.CV_64F), boxes)
    return total / np.maximum(area, 1)


def nms(boxes: np.ndarray, scores: np.ndarray, max_iou: float, keep: int) -> np.ndarray:
    """Indices of up to `keep` boxes, best score first, none overlapping a better one more
    than `max_iou` (greedy non-maximum suppression)."""
    order = np.argsort(-scores, kind="stable")
    overlap = iou(boxes[:, None], boxes[None])
    chosen: list[int] = []
    for i in order:
        if len(chosen) == keep:
            break
        if not chosen or overlap[i, chosen].max() <= max_iou:
            chosen.append(int(i))
    return np.array(chosen, dtype=int)


def propose_random(frame: np.ndarray, cfg: MiningConfig, rng: np.random.Generator) -> np.ndarray:
    """Up to cfg.seeds_per_clip textured, non-overlapping random boxes (k x 4)."""
    boxes = _textured_candidates(frame, cfg, rng)
    # scores falling with the draw order: NMS then keeps boxes in the order drawn
    order = -np.arange(len(boxes), dtype=np.float64)
    return boxes[nms(boxes, order, cfg.nms_iou, cfg.seeds_per_clip)]


@torch.inference_mode()
def propose_objectness(
    frame: np.ndarray, net: SiamNet, cfg: MiningConfig, rng: np.random.Generator
) -> np.ndarray:
    """Up to cfg.seeds_per_clip textured boxes (k x 4), most object-like first."""
    boxes = _textured_candidates(frame, cfg, rng)
    if len(boxes) == 0:
        return boxes
    scores = objectness(frame, boxes, net)
    keep = nms(boxes, scores, cfg.nms_iou, cfg.seeds_per_clip)
    score = partial(objectness, frame, net=net)
    boxes, scores = refine(frame.shape, boxes[keep], scores[keep], score, cfg.refine_steps)
    # refined boxes may have converged on the same object
    return boxes[nms(boxes, scores, cfg.nms_iou, cfg.seeds_per_clip)]


def refine(
    frame_shape: tuple[int, ...],
    boxes: np.ndarray,
    scores: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    steps: int,
    stretch: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Local search: `steps` rounds in which each box moves to the best-scoring (`score`:
    boxes N x 4 -> scores N) of itself and its 6 neighbours (shifted by +/-d of its width or
    height, or scaled by 1 +/- d), with d halving from 1/4; `stretch` adds 4 more that scale
    the width or the height alone (the aspect ratio then changes too). A random candidate
    rarely sits squarely on an object, and a seed half on an object and half on the
    background moves two ways at once: its tracks fail the cycle test."""
    height, width = frame_shape[:2]
    for step in range(steps):
        d = 0.25 / 2**step
        moves = [[0, 0, 1, 1], [d, 0, 1, 1], [-d, 0, 1, 1], [0, d, 1, 1], [0, -d, 1, 1]]
        moves += [[0, 0, 1 + d, 1 + d], [0, 0, 1 - d, 1 - d]]
        if stretch:
            moves += [[0, 0, 1 + d, 1], [0, 0, 1 - d, 1], [0, 0, 1, 1 + d], [0, 0, 1, 1 - d]]
        moves = np.array(moves)
        centre = (
            boxes[:, None, :2] + boxes[:, None, 2:] / 2 + moves[None, :, :2] * boxes[:, None, 2:]
        )
        size = boxes[:, None, 2:] * moves[None, :, 2:]
        size = np.minimum(size, [width, height])
        corner = np.clip(centre - size / 2, 0.0, [width, height] - size)
        tries = np.concatenate([corner, size], axis=2)  # k x moves x 4
        tried = score(tries.reshape(-1, 4)).reshape(len(boxes), -1)
        best = tried.argmax(axis=1)
        boxes, scores = tries[np.arange(len(boxes)), best], tried[np.arange(len(boxes)), best]
    return boxes, scores


@torch.inference_mode()
def objectness(frame: np.ndarray, boxes: np.ndarray, net: SiamNet) -> np.ndarray:
    """1 - cos(embedding of the box, embedding of its ring) for each box (N), in [0, 2].

    The net embeds with its projection head (a BD model); a model without one (trained
    without a contrastive loss) embeds with its L2-normalised, globally pooled features.
    """
    net.eval()
    border = average_colour(frame)
    crops = np.stack([c for box in boxes for c in box_and_ring(frame, box, border)])
    # crops: 2N x S x S x 3, (box, ring) of each candidate in turn
    device = next(net.parameters()).device
    images = to_tensor(crops, device)
    if net.projection is not None:
        emb = net.embed(images)
    else:
        emb = F.normalize(net.features(images).mean(dim=(2, 3)), dim=1)
    emb = emb.float().reshape(len(boxes), 2, -1)  # N x (box, ring) x D
    return (1.0 - (emb[:, 0] * emb[:, 1]).sum(dim=1)).cpu().numpy().astype(np.float64)


def box_and_ring(
    frame: np.ndarray, box: np.ndarray, border: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The box's content and its ring (box filled with the ring's mean colour), both
    EMBED_SIZE^2 crops of the same aspect-ratio stretch; `border` fills outside the frame."""
    x, y, w, h = (float(v) for v in box)
    centre = (x + w / 2, y + h / 2)
    inner = _crop_rect(frame, centre, (w, h), EMBED_SIZE, border)
    ring = _crop_rect(frame, centre, (RING * w, RING * h), EMBED_SIZE, border)
    lo = round(EMBED_SIZE * (1 - 1 / RING) / 2)
    hi = EMBED_SIZE - lo
    mask = np.ones(ring.shape[:2], bool)
    mask[lo:hi, lo:hi] = False
    ring[~mask] = ring[mask].mean(axis=0).round().astype(np.uint8)
    return inner, ring


def _crop_rect(
    frame: np.ndarray,
    centre: tuple[float, float],
    size: tuple[float, float],
    out: int,
    border: tuple[float, ...],
) -> np.ndarray:
    """The (w, h) rectangle around `centre` (pixel-edge coordinates) resized to out x out,
    the rectangular twin of `pul.crops.crop_and_resize`."""
    sx, sy = out / size[0], out / size[1]
    matrix = np.array(
        [
            [sx, 0.0, (0.5 - centre[0]) * sx + out / 2 - 0.5],
            [0.0, sy, (0.5 - centre[1]) * sy + out / 2 - 0.5],
        ]
    )
    return cv2.warpAffine(
        frame,
        matrix,
        (out, out),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def _textured_candidates(
    frame: np.ndarray, cfg: MiningConfig, rng: np.random.Generator
) -> np.ndarray:
    boxes = sample_boxes(frame.shape, cfg.candidates, cfg, rng)
    return boxes[texture(frame, boxes) >= cfg.min_texture]
