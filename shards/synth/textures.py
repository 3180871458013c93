"""Objects: a texture cut to a shape with soft edges, stored as a small image pyramid.

A texture *family* is a square patch (a photo crop, possibly recoloured, or a seeded
procedural pattern). Each object is a member: a sub-crop of a family with a small colour
jitter. Look-alike distractors are members of the target's own family, which makes them
hard negatives the way same-class objects are in real videos.

Sprites are premultiplied BGRA float32, so bilinear warping of the colour and the alpha
stays consistent at soft edges. Each pyramid level halves the previous with INTER_AREA
(exact 2x2 means, the inner size being a multiple of 4), so a small object is warped from
a level near its size instead of aliasing from the full-size sprite.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPRITE_SIDE = 128
"""Longest inner side of a level-0 sprite: detail for the largest objects at 320x240."""
FAMILY_SIDE = 192
"""Family patch side: members (<= SPRITE_SIDE) cut from it overlap, hence look alike."""
PAD = 4
"""Transparent border around the shape, room for the soft edge."""
LEVELS = 3
SHAPES = ("rectangle", "rounded", "ellipse", "polygon")
PATTERNS = ("noise", "stripes", "dots")


@dataclass(frozen=True)
class Sprite:
    levels: tuple[np.ndarray, ...]
    """Premultiplied BGRA float32 images, each half the size of the previous one."""
    box: tuple[float, float, float, float]
    """x0, y0, x1, y1 of the shape (alpha >= 0.5) in level-0 pixel-edge coordinates."""
    area: float
    """Sum of the level-0 alpha: the object's area in level-0 pixels."""


def family(
    rng: np.random.Generator, photos: list[np.ndarray], photo_prob: float
) -> tuple[np.ndarray, str]:
    """A FAMILY_SIDE square float32 BGR texture and a short description of its origin."""
    if photos and rng.random() < photo_prob:
        index = int(rng.integers(len(photos)))
        return recolour(rng, photo_crop(rng, photos[index])), f"photo:{index}"
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    return _PATTERN_MAKERS[kind](rng, FAMILY_SIDE), f"pattern:{kind}"


def photo_crop(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    """A random square crop (a quarter to 60% of the shorter side) resized to FAMILY_SIDE."""
    height, width = photo.shape[:2]
    side = int(min(height, width) * rng.uniform(0.25, 0.6))
    y = int(rng.integers(height - side + 1))
    x = int(rng.integers(width - side + 1))
    crop = cv2.resize(
        photo[y : y + side, x : x + side], (FAMILY_SIDE, FAMILY_SIDE), interpolation=cv2.INTER_AREA
    )
    return crop.astype(np.float32)


def recolour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Tint gray images (mostly), shift the hue of colour ones (sometimes)."""
    gray = float(np.abs(image[..., 0] - image[..., 2]).mean()) < 2.0
    if gray and rng.random() < 0.8:
        tint = rng.uniform(0.35, 1.0, 3).astype(np.float32)
        return np.clip(image * (tint / tint.max() * 1.15), 0, 255)
    if not gray and rng.random() < 0.5:
        hsv = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_BGR2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(20, 160))) % 180
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.float32)
    return image


def member(
    rng: np.random.Generator, source: np.ndarray, width: int, height: int, jitter: float
) -> np.ndarray:
    """A width x height sub-crop of a family with per-channel gain jitter and side lighting."""
    y = int(rng.integers(source.shape[0] - height + 1))
    x = int(rng.integers(source.shape[1] - width + 1))
    crop = source[y : y + height, x : x + width] * rng.uniform(1 - jitter, 1 + jitter, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (
        np.cos(angle) * np.linspace(-1, 1, width)[None, :]
        + np.sin(angle) * np.linspace(-1, 1, height)[:, None]
    )
    light = 1.0 + rng.uniform(0.05, 0.25) * ramp  # lit from one side: reads as a solid thing
    return np.clip(crop * light[..., None].astype(np.float32), 0, 255).astype(np.float32)


def shape_mask(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A float32 alpha in [0, 1] of size (height + 2 PAD, width + 2 PAD); the shape touches
    all four sides of the inner width x height rectangle, so that rectangle is its box."""
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    canvas = np.zeros((height + 2 * PAD, width + 2 * PAD), np.uint8)
    _SHAPE_DRAWERS[kind](rng, canvas, width, height)
    sigma = rng.uniform(0.5, 1.4)
    return cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), sigma)


def sprite(texture: np.ndarray, alpha: np.ndarray) -> Sprite:
    """Cut a texture (inner size) with an alpha (padded size) into a sprite pyramid."""
    colour = cv2.copyMakeBorder(texture, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    edge = 0.75 + 0.25 * cv2.GaussianBlur(alpha, (0, 0), 3.0)  # darker rim: a hint of volume
    level = np.dstack([colour * (alpha * edge)[..., None], alpha]).astype(np.float32)
    levels = [level]
    for _ in range(LEVELS - 1):
        height, width = levels[-1].shape[:2]
        levels.append(
            cv2.resize(levels[-1], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        )
    rows = np.flatnonzero(alpha.max(axis=1) >= 0.5)
    cols = np.flatnonzero(alpha.max(axis=0) >= 0.5)
    box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    for image in levels:
        image.setflags(write=False)
    return Sprite(tuple(levels), box, float(alpha.sum()))


def inner_size(rng: np.random.Generator, aspect: float) -> tuple[int, int]:
    """Level-0 inner (width, height) for a width/height aspect, multiples of 4."""
    if aspect >= 1:
        width, height = SPRITE_SIDE, SPRITE_SIDE / aspect
    else:
        width, height = SPRITE_SIDE * aspect, SPRITE_SIDE
    return max(16, int(width) // 4 * 4), max(16, int(height) // 4 * 4)


def _draw_rectangle(rng, canvas, width, height) -> None:
    cv2.rectangle(canvas, (PAD, PAD), (PAD + width - 1, PAD + height - 1), 255, cv2.FILLED)


def _draw_rounded(rng, canvas, width, height) -> None:
    r = int(min(width, height) * rng.uniform(0.15, 0.45))
    x0, y0, x1, y1 = PAD, PAD, PAD + width - 1, PAD + height - 1
    cv2.rectangle(canvas, (x0 + r, y0), (x1 - r, y1), 255, cv2.FILLED)
    cv2.rectangle(canvas, (x0, y0 + r), (x1, y1 - r), 255, cv2.FILLED)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
        cv2.circle(canvas, (cx, cy), r, 255, cv2.FILLED, cv2.LINE_AA)


def _draw_ellipse(rng, canvas, width, height) -> None:
    # shift=4: sixteenth-pixel centre and axes, so the ellipse exactly spans the inner box
    centre = (round((PAD + (width - 1) / 2) * 16), round((PAD + (height - 1) / 2) * 16))
    axes = (round((width - 1) / 2 * 16), round((height - 1) / 2 * 16))
    cv2.ellipse(canvas, centre, axes, 0, 0, 360, 255, cv2.FILLED, cv2.LINE_AA, 4)


def _draw_polygon(rng, canvas, width, height) -> None:
    count = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = rng.uniform(0.6, 1.0, count)
    points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    low, high = points.min(axis=0), points.max(axis=0)
    # stretched so the vertices span the inner box exactly
    points = (points - low) / np.maximum(high - low, 1e-6) * [width - 1, height - 1] + PAD
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)


_SHAPE_DRAWERS = {
    "rectangle": _draw_rectangle,
    "rounded": _draw_rounded,
    "ellipse": _draw_ellipse,
    "polygon": _draw_polygon,
}


def _palette(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.uniform(15, 240, (count, 3)).astype(np.float32)


def _value_noise(rng: np.random.Generator, side: int) -> np.ndarray:
    """Multi-octave value noise in [0, 1]: smooth blobs with finer detail on top."""
    total = np.zeros((side, side), np.float32)
    for cells, weight in ((3, 1.0), (6, 0.5), (12, 0.25), (24, 0.15)):
        grid = rng.random((cells, cells)).astype(np.float32)
        total += weight * cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def _ramp(values: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] through a piecewise-linear colour ramp."""
    stops = np.linspace(0, 1, len(colours))
    return np.stack([np.interp(values, stops, colours[:, c]) for c in range(3)], axis=-1).astype(
        np.float32
    )


def _noise_pattern(rng: np.random.Generator, side: int) -> np.ndarray:
    return _ramp(_value_noise(rng, side), _palette(rng, int(rng.integers(2, 5))))


def _stripes_pattern(rng: np.random.Generator, side: int) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(8, 40)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    phase = (x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period)
    wave = 0.5 + 0.5 * np.sin(phase + 4.0 * _value_noise(rng, side))
    grain = 0.15 * (_value_noise(rng, side) - 0.5)
    return _ramp(np.clip(wave + grain, 0, 1), _palette(rng, 2))


def _dots_pattern(rng: np.random.Generator, side: int) -> np.ndarray:
    colours = _palette(rng, 4)
    image = np.empty((side, side, 3), np.float32)
    image[:] = colours[0]
    for _ in range(int(rng.integers(15, 60))):
        centre = (int(rng.integers(side)), int(rng.integers(side)))
        colour = tuple(float(v) for v in colours[int(rng.integers(1, 4))])
        cv2.circle(image, centre, int(rng.integers(3, 22)), colour, cv2.FILLED, cv2.LINE_AA)
    shade = 0.8 + 0.4 * _value_noise(rng, side)
    return np.clip(image * shade[..., None], 0, 255)


_PATTERN_MAKERS = {"noise": _noise_pattern, "stripes": _stripes_pattern, "dots": _dots_pattern}
