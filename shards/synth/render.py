"""Frames from a scene plan: warp the background and the sprites, blur what moves fast,
composite back to front, then light the frame.

Each object is warped only into its own region of interest, and everything stays in
float32 until the end, so a 320x240 frame costs a few milliseconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shards.synth.scene import Layer, Light, Scene
from shards.synth.textures import LEVELS

EXPOSURE = 0.8
"""Fraction of the frame interval the shutter is open: blur length = EXPOSURE x motion."""
MIN_BLUR = 1.5
"""Blur streaks shorter than this (pixels) are invisible after JPEG; skip them."""


@dataclass(frozen=True)
class TargetView:
    in_frame: float
    """Fraction of the target's area inside the frame."""
    occlusion: float
    """Fraction of its in-frame area hidden by layers in front of it."""


def render_frame(scene: Scene, t: int) -> tuple[np.ndarray, TargetView]:
    """Frame t (BGR uint8) and how much of the target it shows."""
    width, height = scene.frame
    canvas = _background(scene, t)
    visible = np.zeros((height, width), np.float32)  # the target's uncovered alpha
    in_frame, shown = 0.0, 0.0
    for layer in scene.layers:
        placed = _place(layer, t, scene.frame, scene.blur)
        if placed is None:
            continue
        (y0, y1, x0, x1), patch = placed
        alpha = patch[..., 3]
        region = canvas[y0:y1, x0:x1]
        region *= (1.0 - alpha)[..., None]
        region += patch[..., :3]
        if layer.role == "target":
            visible[y0:y1, x0:x1] = alpha
            shown = float(alpha.sum())
            in_frame = shown / _full_area(layer, t)
        elif shown > 0:
            visible[y0:y1, x0:x1] *= 1.0 - alpha
    occlusion = 1.0 - float(visible.sum()) / shown if shown > 0 else 0.0
    if scene.light is not None:
        canvas = _illuminate(canvas, scene.light, t)
    np.clip(canvas, 0, 255, out=canvas)
    view = TargetView(min(in_frame, 1.0), min(max(occlusion, 0.0), 1.0))
    return canvas.astype(np.uint8), view


def camera_matrix(camera: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine map from world pixel centres to frame pixel centres (OpenCV's)."""
    cx, cy, zoom = camera
    return np.array(
        [
            [zoom, 0.0, (0.5 - cx) * zoom + frame[0] / 2 - 0.5],
            [0.0, zoom, (0.5 - cy) * zoom + frame[1] / 2 - 0.5],
        ]
    )


def _background(scene: Scene, t: int) -> np.ndarray:
    matrix = camera_matrix(scene.camera[t], scene.frame)
    image = cv2.warpAffine(
        scene.world, matrix, scene.frame, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    if scene.blur:
        # the image shift of the frame centre stands for the whole frame's motion
        centre = np.asarray(scene.frame, np.float64) / 2
        other = scene.camera[t - 1] if t > 0 else scene.camera[min(1, len(scene.camera) - 1)]
        shift = _world_shift(centre, scene.camera[t], other, scene.frame)
        kernel = _streak(shift)
        if kernel is not None:
            image = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return image.astype(np.float32)


def _world_shift(
    point: np.ndarray, now: np.ndarray, before: np.ndarray, frame: tuple[int, int]
) -> np.ndarray:
    """How far the background at frame point `point` moved since the other camera pose."""
    centre = np.asarray(frame, np.float64) / 2
    world = (point - centre) / now[2] + now[:2]
    return point - ((world - before[:2]) * before[2] + centre)


def _place(
    layer: Layer, t: int, frame: tuple[int, int], blur: bool
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The layer's premultiplied BGRA patch at frame t and the frame region it covers."""
    x, y, w, h = layer.boxes[t]
    bx0, by0, bx1, by1 = layer.sprite.box
    level = int(np.clip(np.floor(np.log2(max((bx1 - bx0) / w, 1e-6))), 0, LEVELS - 1))
    image = layer.sprite.levels[level]
    step = 2.0**level
    sx, sy = w * step / (bx1 - bx0), h * step / (by1 - by0)
    # sprite pixel-edge u maps to frame edge x + (u - bx0 / step) * sx; centres are edges - 0.5
    tx = x + (0.5 - bx0 / step) * sx - 0.5
    ty = y + (0.5 - by0 / step) * sy - 0.5
    kernel = _streak(_motion(layer.boxes, t)) if blur else None
    margin = 2 + (kernel.shape[0] // 2 if kernel is not None else 0)
    x0, x1 = _span(tx, image.shape[1] * sx, margin, frame[0])
    y0, y1 = _span(ty, image.shape[0] * sy, margin, frame[1])
    if x1 <= x0 or y1 <= y0:
        return None
    matrix = np.array([[sx, 0.0, tx - x0], [0.0, sy, ty - y0]])
    patch = cv2.warpAffine(
        image,
        matrix,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if kernel is not None:
        patch = cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return (y0, y1, x0, x1), patch


def _span(start: float, length: float, margin: int, limit: int) -> tuple[int, int]:
    """Integer pixel range covering [start, start + length] plus a margin, inside the frame."""
    low = max(int(np.floor(start)) - margin, 0)
    return low, min(int(np.ceil(start + length)) + margin, limit)


def _full_area(layer: Layer, t: int) -> float:
    bx0, by0, bx1, by1 = layer.sprite.box
    w, h = layer.boxes[t, 2:]
    return layer.sprite.area * w * h / ((bx1 - bx0) * (by1 - by0))


def _motion(boxes: np.ndarray, t: int) -> np.ndarray:
    """Frame displacement of a box centre over the frame interval ending at t."""
    previous, current = (t - 1, t) if t > 0 else (0, min(1, len(boxes) - 1))
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    return centres[current] - centres[previous]


def _streak(shift: np.ndarray) -> np.ndarray | None:
    """A normalised line kernel along `shift`, or None when the streak would not show."""
    length = EXPOSURE * float(np.hypot(*shift))
    if length < MIN_BLUR:
        return None
    size = 2 * int(np.ceil(length / 2)) + 1
    kernel = np.zeros((size, size), np.uint8)
    half = np.asarray(shift, np.float64) / np.hypot(*shift) * length / 2
    centre = (size - 1) / 2
    ends = [np.round((centre + sign * half) * 16).astype(int) for sign in (-1, 1)]
    cv2.line(
        kernel,
        tuple(int(v) for v in ends[0]),
        tuple(int(v) for v in ends[1]),
        255,
        1,
        cv2.LINE_AA,
        4,
    )
    kernel = kernel.astype(np.float32)
    return kernel / kernel.sum()


def _illuminate(canvas: np.ndarray, light: Light, t: int) -> np.ndarray:
    height, width = canvas.shape[:2]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    angle = light.angle[t]
    gain = light.gain[t] * (1.0 + light.shade[t] * (np.cos(angle) * xs + np.sin(angle) * ys))
    canvas *= gain[..., None].astype(np.float32)
    canvas += np.float32(light.offset[t])
    return canvas
