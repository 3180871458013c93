"""Trajectories: the camera over the world photograph, objects in the world, scale curves.

Objects live in world (background photograph) coordinates, so a camera pan or zoom moves
them together with the background, as in real footage. A camera pose is (cx, cy, zoom):
the world point (cx, cy) sits at the frame centre and a world pixel spans `zoom` frame
pixels. Coordinates are pixel-edge coordinates (pixel j spans [j, j + 1)).

An object's own motion is a velocity in frame pixels per frame with small random
accelerations and, now and then, an abrupt turn. It bounces off the frame borders (its
frame position, including the camera's effect, is what must stay in view), so the target
stays mostly inside the frame without the camera having to follow it.
"""

from __future__ import annotations

import numpy as np

CAMERA_SPEED = 2.5
"""Fastest camera pan, in frame pixels per frame."""
ZOOM_RANGE = (0.75, 1.35)
"""Camera zoom limits; the world is WORLD_SCALE times the frame, so 1/WORLD_SCALE is the
zoom at which the view covers the whole world."""
WORLD_SCALE = 1.6
ABRUPT_PROB = 0.03
"""Chance per frame of an abrupt change of direction and speed."""


def smooth_curve(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A smooth random curve of n values whose largest magnitude is exactly `amplitude`."""
    t = np.arange(n, dtype=np.float64)
    curve = np.zeros(n)
    for _ in range(3):
        period = rng.uniform(max(12.0, n / 3), max(24.0, 2.0 * n))
        curve += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 7))
    peak = float(np.abs(curve).max())
    return curve * (amplitude / peak) if peak > 1e-9 else curve


def world_size(frame: tuple[int, int]) -> tuple[int, int]:
    return round(frame[0] * WORLD_SCALE), round(frame[1] * WORLD_SCALE)


def camera_path(
    rng: np.random.Generator, n: int, frame: tuple[int, int], moving: bool
) -> np.ndarray:
    """(n, 3) camera poses (cx, cy, zoom), the view always inside the world."""
    zoom = np.full(n, rng.uniform(0.95, 1.2))
    if moving:
        zoom = np.clip(zoom * np.exp(smooth_curve(rng, n, rng.uniform(0.05, 0.2))), *ZOOM_RANGE)
    velocity = (
        np.stack(
            [smooth_curve(rng, n, rng.uniform(0.3, 1.0) * CAMERA_SPEED) for _ in range(2)], axis=1
        )
        / zoom[:, None]
    )
    if not moving:
        velocity[:] = 0.0
    world = np.array(world_size(frame), np.float64)
    low, high = _view_limits(frame, world, zoom)
    start = rng.uniform(low[0], high[0])
    centre = start + np.cumsum(velocity, axis=0) - velocity[0]
    return np.column_stack([np.clip(centre, low, high), zoom])


def _view_limits(frame, world, zoom) -> tuple[np.ndarray, np.ndarray]:
    half = np.asarray(frame, np.float64)[None, :] / (2 * zoom[:, None])
    return half, world[None, :] - half


def to_frame(points: np.ndarray, camera: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """World points (..., 2) to frame points, with camera poses broadcast against them."""
    centre = np.asarray(frame, np.float64) / 2
    return (points - camera[..., :2]) * camera[..., 2:3] + centre


def to_world(points: np.ndarray, camera: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    centre = np.asarray(frame, np.float64) / 2
    return (points - centre) / camera[..., 2:3] + camera[..., :2]


def scale_path(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """(n, 2) multipliers of the object's world width and height: a smooth scale change
    plus a smaller aspect-ratio change."""
    log_scale = smooth_curve(rng, n, amplitude)
    log_aspect = smooth_curve(rng, n, 0.4 * amplitude)
    return np.exp(np.stack([log_scale + log_aspect / 2, log_scale - log_aspect / 2], axis=1))


def walk(
    rng: np.random.Generator,
    camera: np.ndarray,
    frame: tuple[int, int],
    start: np.ndarray,
    half: np.ndarray,
    speed: float,
    limit: float,
    keep: float,
) -> np.ndarray:
    """(n, 2) world centres of an object starting at frame point `start`.

    half: (n, 2) the object's half size in frame pixels; speed: its cruising speed and
    limit the fastest it may go (frame pixels per frame, relative to the background); keep:
    the fraction of the half size that must stay inside the frame (1: always fully inside,
    0: the centre inside).
    """
    n = len(camera)
    position = to_world(np.asarray(start, np.float64), camera[0], frame)
    preferred = speed
    velocity = direction(rng) * preferred
    low, high = keep * half, np.asarray(frame) - keep * half
    out = np.empty((n, 2))
    for t in range(n):
        out[t] = position
        if t + 1 == n:
            break
        if rng.random() < ABRUPT_PROB:
            preferred = limit * rng.uniform(0.3, 1.0)
            velocity = direction(rng) * preferred
        velocity = _accelerate(rng, velocity, preferred, limit)
        here = to_frame(position, camera[t], frame)
        drift = to_frame(position, camera[t + 1], frame) - here  # the camera's effect
        velocity = _bounce(here + drift + velocity, velocity, drift, low[t + 1], high[t + 1])
        position = position + velocity / camera[t + 1, 2]
    return out


def direction(rng: np.random.Generator) -> np.ndarray:
    """A random unit vector."""
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def _accelerate(
    rng: np.random.Generator, velocity: np.ndarray, preferred: float, limit: float
) -> np.ndarray:
    # random pushes, then a soft pull of the speed towards the preferred one
    velocity = velocity + rng.normal(0.0, 0.12 * max(preferred, 0.1), 2)
    speed = float(np.hypot(*velocity))
    if speed > 1e-9:
        velocity = velocity * (0.85 + 0.15 * preferred / speed)
        speed = float(np.hypot(*velocity))
        if speed > limit:
            velocity = velocity * (limit / speed)
    return velocity


def _bounce(
    ahead: np.ndarray, velocity: np.ndarray, drift: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Turn the velocity back in from a border; outpace the camera if it pushes outwards."""
    velocity = velocity.copy()
    for axis in range(2):
        if ahead[axis] < low[axis]:
            velocity[axis] = abs(velocity[axis]) + max(0.0, -drift[axis])
        elif ahead[axis] > high[axis]:
            velocity[axis] = -abs(velocity[axis]) - max(0.0, drift[axis])
    return velocity


def crossing(
    camera: np.ndarray, through: np.ndarray, when: int, heading: np.ndarray, speed: float
) -> np.ndarray:
    """(n, 2) world centres of a straight pass through world point `through` at frame `when`,
    at `speed` frame pixels per frame (at the zoom of that frame)."""
    steps = np.arange(len(camera), dtype=np.float64) - when
    return through + steps[:, None] * heading * (speed / camera[when, 2])


def frame_boxes(
    centres: np.ndarray, sizes: np.ndarray, camera: np.ndarray, frame: tuple[int, int]
) -> np.ndarray:
    """(n, 4) frame boxes x, y, w, h from world centres and world sizes (n, 2)."""
    centre = to_frame(centres, camera, frame)
    size = sizes * camera[:, 2:3]
    return np.column_stack([centre - size / 2, size])
