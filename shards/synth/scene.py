"""A video's plan: the background, the camera, every object's sprite and frame boxes, the
lighting. Rendering (render.py) turns a plan into frames; all randomness is spent here.

Each aspect draws from its own child of the video's seed (background and camera, target,
distractors, occluder, light), so switching one knob off (say, distractors) leaves the
others unchanged: the ground-truth test relies on it, and so does comparing difficulty
settings on the same target motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from shards.synth import motion, textures
from shards.synth.config import SPLITS, SynthConfig
from shards.synth.photos import SPLIT_PHOTOS, split_photos

PHOTO_TEXTURE_PROB = 0.6
"""Chance that a texture family is a photo crop rather than a procedural pattern."""
FRONT_PROB = 0.35
"""Chance that a distractor moves in front of the target rather than behind it."""


@dataclass(frozen=True)
class Layer:
    sprite: textures.Sprite
    boxes: np.ndarray
    """(n, 4) frame boxes x, y, w, h of the shape's full extent (pixel-edge coordinates)."""
    role: str
    """'target', 'distractor' or 'occluder'."""


@dataclass(frozen=True)
class Light:
    gain: np.ndarray
    """(n,) global multiplicative gain."""
    offset: np.ndarray
    """(n,) global additive offset, gray levels."""
    shade: np.ndarray
    """(n,) strength of a linear shading gradient across the frame."""
    angle: np.ndarray
    """(n,) direction of the gradient, radians."""


@dataclass(frozen=True)
class Scene:
    frame: tuple[int, int]
    world: np.ndarray
    """The background photograph region (BGR uint8) the camera looks at."""
    camera: np.ndarray
    """(n, 3) camera poses cx, cy, zoom."""
    layers: tuple[Layer, ...]
    """Back to front."""
    light: Light | None
    blur: bool
    info: dict = field(default_factory=dict)

    @property
    def target(self) -> Layer:
        return next(layer for layer in self.layers if layer.role == "target")


def video_seeds(cfg: SynthConfig, index: int) -> list[np.random.Generator]:
    """Five independent generators for one video: world, target, distractors, occluder, light."""
    root = np.random.SeedSequence([cfg.seed, SPLITS.index(cfg.split), index])
    return [np.random.default_rng(child) for child in root.spawn(5)]


def build_scene(cfg: SynthConfig, index: int) -> Scene:
    """The plan of video `index`: a pure function of the config and the index."""
    world_rng, target_rng, distractor_rng, occluder_rng, light_rng = video_seeds(cfg, index)
    photos = split_photos(cfg.split)
    photo, world = _world(world_rng, photos, cfg.size)
    camera = motion.camera_path(world_rng, cfg.frames, cfg.size, cfg.camera_motion)
    source, origin = textures.family(target_rng, photos, PHOTO_TEXTURE_PROB)
    target = _target(target_rng, cfg, camera, source)
    behind, front, similar = _distractors(distractor_rng, cfg, camera, photos, source, target)
    layers = [*behind, target, *front]
    occluder = None
    if occluder_rng.random() < cfg.occlusion_prob:
        occluder = _occluder(occluder_rng, cfg, camera, photos, target)
        layers.append(occluder[0])
    info = {
        "background": SPLIT_PHOTOS[cfg.split][photo],
        "target_texture": _origin_name(origin, cfg.split),
        "distractors": len(behind) + len(front),
        "similar_distractors": similar,
        "occluder_frame": None if occluder is None else occluder[1],
        "camera_motion": cfg.camera_motion,
    }
    light = _light(light_rng, cfg.frames) if cfg.illumination else None
    return Scene(cfg.size, world, camera, tuple(layers), light, cfg.blur, info)


def _origin_name(origin: str, split: str) -> str:
    kind, _, which = origin.partition(":")
    return f"photo:{SPLIT_PHOTOS[split][int(which)]}" if kind == "photo" else origin


def _world(
    rng: np.random.Generator, photos: list[np.ndarray], frame: tuple[int, int]
) -> tuple[int, np.ndarray]:
    """A random crop (frame aspect, 70-100% of the largest) of a photo, at world size."""
    index = int(rng.integers(len(photos)))
    photo = photos[index]
    size = motion.world_size(frame)
    height, width = photo.shape[:2]
    fit = min(width / size[0], height / size[1]) * rng.uniform(0.7, 1.0)
    crop_w, crop_h = int(size[0] * fit), int(size[1] * fit)
    x = int(rng.integers(width - crop_w + 1))
    y = int(rng.integers(height - crop_h + 1))
    crop = photo[y : y + crop_h, x : x + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrink = cv2.INTER_AREA if fit > 1 else cv2.INTER_LINEAR
    return index, cv2.resize(crop, size, interpolation=shrink)


def _make_object(
    rng: np.random.Generator,
    source: np.ndarray,
    aspect: float,
    side: float,
    jitter: float,
    camera: np.ndarray,
) -> tuple[textures.Sprite, np.ndarray]:
    """A sprite and its (n, 2) world sizes: `side` is the square root of its frame area at
    the first frame."""
    width, height = textures.inner_size(rng, aspect)
    sprite = textures.sprite(
        textures.member(rng, source, width, height, jitter), textures.shape_mask(rng, width, height)
    )
    x0, y0, x1, y1 = sprite.box
    base = np.array([x1 - x0, y1 - y0]) * side / np.sqrt((x1 - x0) * (y1 - y0)) / camera[0, 2]
    return sprite, base


def _target(
    rng: np.random.Generator, cfg: SynthConfig, camera: np.ndarray, source: np.ndarray
) -> Layer:
    side = rng.uniform(cfg.object_min, cfg.object_max) * min(cfg.size)
    sprite, base = _make_object(rng, source, np.exp(rng.uniform(-0.7, 0.7)), side, 0.05, camera)
    sizes = base * motion.scale_path(rng, cfg.frames, cfg.scale_change)
    half = sizes * camera[:, 2:3] / 2
    start = rng.uniform(half[0], np.asarray(cfg.size) - half[0])
    speed = rng.uniform(0.3, 1.0) * cfg.max_speed
    centres = motion.walk(rng, camera, cfg.size, start, half, speed, cfg.max_speed, keep=0.7)
    return Layer(sprite, motion.frame_boxes(centres, sizes, camera, cfg.size), "target")


def _distractors(
    rng: np.random.Generator,
    cfg: SynthConfig,
    camera: np.ndarray,
    photos: list[np.ndarray],
    source: np.ndarray,
    target: Layer,
) -> tuple[list[Layer], list[Layer], int]:
    """Distractors behind and in front of the target, and how many look like it."""
    behind, front, similar = [], [], 0
    for _ in range(int(rng.integers(cfg.distractors_min, cfg.distractors_max + 1))):
        alike = bool(rng.random() < cfg.similar_prob)
        family = source if alike else textures.family(rng, photos, PHOTO_TEXTURE_PROB)[0]
        side = np.sqrt(np.prod(target.boxes[0, 2:])) * rng.uniform(0.7, 1.3)
        sprite, base = _make_object(
            rng, family, np.exp(rng.uniform(-0.7, 0.7)), side, 0.15 if alike else 0.05, camera
        )
        sizes = base * motion.scale_path(rng, cfg.frames, cfg.scale_change)
        half = sizes * camera[:, 2:3] / 2
        start = _away_from(rng, target.boxes[0], half[0], cfg.size)
        speed = rng.uniform(0.2, 1.0) * cfg.max_speed
        centres = motion.walk(rng, camera, cfg.size, start, half, speed, cfg.max_speed, keep=0.0)
        layer = Layer(sprite, motion.frame_boxes(centres, sizes, camera, cfg.size), "distractor")
        (front if rng.random() < FRONT_PROB else behind).append(layer)
        similar += alike
    return behind, front, similar


def _away_from(
    rng: np.random.Generator, box: np.ndarray, half: np.ndarray, frame: tuple[int, int]
) -> np.ndarray:
    """A frame point for an object of half size `half` that does not cover `box` at the
    first frame (the tracker's initial box must show the target, not a distractor)."""
    point = rng.uniform(half, np.asarray(frame) - half)
    for _ in range(50):
        gap = np.abs(point - (box[:2] + box[2:] / 2)) - (half + box[2:] / 2)
        if gap.max() > 0:
            break
        point = rng.uniform(half, np.asarray(frame) - half)
    return point


def _occluder(
    rng: np.random.Generator,
    cfg: SynthConfig,
    camera: np.ndarray,
    photos: list[np.ndarray],
    target: Layer,
) -> tuple[Layer, int]:
    """An object crossing straight over the target's position, and the frame it is centred."""
    source, _ = textures.family(rng, photos, PHOTO_TEXTURE_PROB)
    side = np.sqrt(np.prod(target.boxes[0, 2:])) * rng.uniform(1.1, 2.0)
    sprite, base = _make_object(rng, source, np.exp(rng.uniform(-0.5, 0.5)), side, 0.05, camera)
    n = cfg.frames
    when = int(rng.integers(n // 5, max(n // 5 + 1, 4 * n // 5)))
    frames_over = rng.uniform(6, max(8, n / 3))  # about how long it covers the target
    speed = (side + np.sqrt(np.prod(target.boxes[when, 2:]))) / frames_over
    centre = target.boxes[when, :2] + target.boxes[when, 2:] / 2
    through = motion.to_world(centre, camera[when], cfg.size)
    centres = motion.crossing(camera, through, when, motion.direction(rng), speed)
    sizes = np.repeat(base[None, :], n, axis=0)
    return Layer(sprite, motion.frame_boxes(centres, sizes, camera, cfg.size), "occluder"), when


def _light(rng: np.random.Generator, n: int) -> Light:
    return Light(
        gain=np.exp(motion.smooth_curve(rng, n, rng.uniform(0.08, 0.3))),
        offset=motion.smooth_curve(rng, n, rng.uniform(0.0, 15.0)),
        shade=np.abs(motion.smooth_curve(rng, n, rng.uniform(0.05, 0.3))),
        angle=rng.uniform(0, 2 * np.pi) + motion.smooth_curve(rng, n, 1.0),
    )
