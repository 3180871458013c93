"""Where something moves differently from the background: the motion proposer's evidence.

Dense optical flow (Farneback) from the seed frame to a frame a few steps later gives each
pixel of the seed frame a displacement. The camera moves the whole background together,
which a single affine map (pan, zoom, rotation, shear) explains; it is fitted to the flow
of textured points with RANSAC, so the moving objects, a minority of the frame, do not bend
it. What the camera does not explain, |flow - camera flow|, is the *residual motion*: near
zero on the background, large on anything that moves by itself. Flow is measured at the
seed frame's pixels, so a moving object lights up where it is in the seed frame, with no
ghost where it goes (as frame differencing would leave).

The affine fit is a choice: real footage with strong parallax (a close wall beside a far
street) leaves some residual on the nearer layer; a homography would not remove it either,
and on the footage this project trains on the objects' residual is several times larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pul.boxes import box_sums

GRID = 8
"""Spacing in pixels of the points the camera motion is fitted to."""
MIN_POINTS = 12
"""Fewer textured points than this (a flat frame): no camera fit, no motion evidence."""
MIN_INLIERS = 0.3
"""The camera fit must explain at least this share of the points; else the two frames do
not show one scene (a hard cut, a flash) and their flow says nothing."""
MIN_COVER = 0.25
"""The points the camera fit explains must be at least this share of all grid points (of
the frame's area). Over a flat background the only textured points may be on the moving
object itself: the "camera" fitted to them is the object's motion, and everything else
would look as if it moved."""


@dataclass(frozen=True)
class ResidualMotion:
    """Residual motion of the seed frame's pixels and how well the camera was explained."""

    magnitude: np.ndarray
    """H x W float32: |flow - camera flow| in pixels (over the frames between the two)."""
    inliers: float
    """Share of the fitted points the camera motion explains (RANSAC inliers)."""


def residual_motion(seed: np.ndarray, later: np.ndarray) -> ResidualMotion | None:
    """Residual motion of `seed`'s pixels towards `later` (both BGR uint8, same size);
    None when the frames do not share a scene the camera model can explain."""
    a = cv2.cvtColor(seed, cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(later, cv2.COLOR_BGR2GRAY)
    flow = cv2.calcOpticalFlowFarneback(
        a, b, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5,
        poly_sigma=1.1, flags=0,
    )  # fmt: skip
    points = _textured_grid(a)
    if len(points) < MIN_POINTS:
        return None
    moved = points + flow[points[:, 1].astype(int), points[:, 0].astype(int)]
    camera, inlier_mask = cv2.estimateAffine2D(
        points, moved, method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=500,
        confidence=0.99, refineIters=5,
    )  # fmt: skip
    if camera is None:
        return None
    inliers = float(inlier_mask.mean())
    grid_points = len(range(GRID // 2, a.shape[0], GRID)) * len(range(GRID // 2, a.shape[1], GRID))
    if inliers < MIN_INLIERS or inlier_mask.sum() < MIN_COVER * grid_points:
        return None
    height, width = a.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    camera = camera.astype(np.float32)
    camera_dx = camera[0, 0] * xs + camera[0, 1] * ys + camera[0, 2] - xs
    camera_dy = camera[1, 0] * xs + camera[1, 1] * ys + camera[1, 2] - ys
    magnitude = np.hypot(flow[..., 0] - camera_dx, flow[..., 1] - camera_dy)
    return ResidualMotion(magnitude.astype(np.float32), inliers)


def box_contrast(magnitude: np.ndarray, boxes: np.ndarray, ring: float = 2.0) -> np.ndarray:
    """Mean residual motion inside each box minus the mean in its ring (the box enlarged
    `ring` times around its centre, the box itself left out), in pixels (N).

    A box on a moving object scores its motion; a box on background scores about 0; a box
    around only part of an object, or wider than it, scores less than a box that fits,
    because the moving pixels spill into the ring or the still ones dilute the inside.
    """
    integral = cv2.integral(magnitude.astype(np.float64), sdepth=cv2.CV_64F)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inner_sum, inner_area = box_sums(integral, boxes)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    outer = np.concatenate([centre - ring * boxes[:, 2:] / 2, ring * boxes[:, 2:]], axis=1)
    outer_sum, outer_area = box_sums(integral, outer)
    ring_area = np.maximum(outer_area - inner_area, 1)
    return inner_sum / np.maximum(inner_area, 1) - (outer_sum - inner_sum) / ring_area


def moving_regions(magnitude: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """(x, y, w, h) boxes (K x 4) of the connected regions whose residual motion exceeds
    `threshold` pixels, each at least `min_area` pixels.

    Flow is smooth, so an object's motion spills a few pixels onto the still background
    around it, more around fast objects: each region's box is cut to the pixels moving at
    least half as much as its fastest tenth. A closing first joins an object's moving edges
    across its flat inside, where flow has no texture to measure.
    """
    mask = (magnitude > threshold).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = []
    for label in range(1, count):  # 0: the still background
        if stats[label, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, w, h = stats[label, :4]
        inside = labels[y : y + h, x : x + w] == label
        values = magnitude[y : y + h, x : x + w]
        core = inside & (values >= 0.5 * np.percentile(values[inside], 90))
        ys, xs = np.nonzero(cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_CLOSE, kernel))
        boxes.append([x + xs.min(), y + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _textured_grid(grey: np.ndarray) -> np.ndarray:
    """Grid points (N x 2 float32, x y) with enough local gradient for flow to be reliable."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.blur(np.abs(gx) + np.abs(gy), (GRID, GRID))
    height, width = grey.shape
    ys, xs = np.mgrid[GRID // 2 : height : GRID, GRID // 2 : width : GRID]
    keep = energy[ys, xs] > 20.0  # Sobel units: a grey-level step of about 3 per pixel
    return np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
