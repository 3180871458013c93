"""Two augmented views of each patch for contrastive learning (supplement Sec. F).

Operations, in this order (SimCLR's order): random stretch (SiamFC's RandomStretch: scale
about the centre by 1 +/- stretch, output size unchanged) with a random horizontal flip
folded into the same warp; colour distortion; grayscale; Gaussian blur.

Colour distortion **[ours]**: brightness, contrast, saturation and hue jitter composed into
one affine colour map per patch, applied with a single `cv2.transform`. Saturation and hue
are a scaling and a rotation of the chroma plane of YIQ, the linear counterpart of HSV's S
and H: an HSV round trip costs five to eight times more on a 127x127 patch, and the affine
map clips once instead of after each of the four jitters. torchvision shuffles the order of
the four jitters; a composed map has no order.

Every operation draws its parameters for all N patches at once from the numpy Generator,
whether or not it is applied to a patch, so the random stream, and with it the output,
depends only on the seed and N. Patches are BGR uint8, as everywhere in this project.
`draw_augment` makes all the draws up front, in that same order, and returns them as an
`AugmentDraw`; `augment` also takes a given draw, which is how pul/augment_device.py (the
same operations on a batch of tensors) is checked against this path.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Luma and the two chroma axes (YIQ, NTSC), columns in BGR order.
BGR_TO_YIQ = np.array([[0.114, 0.587, 0.299], [-0.322, -0.274, 0.596], [0.312, -0.523, 0.211]])
YIQ_TO_BGR = np.linalg.inv(BGR_TO_YIQ)


@dataclass
class AugmentConfig:
    stretch: float = 0.05
    """Random scale about the patch centre, 1 +/- this fraction (SiamFC's RandomStretch)."""
    flip_prob: float = 0.5
    """Probability of a horizontal flip."""
    colour_prob: float = 0.8
    """Probability that the colour distortion is applied (SimCLR 0.8)."""
    brightness: float = 0.4
    """Brightness: all channels scaled by a factor in 1 +/- this (SimCLR 0.4 at strength 0.5)."""
    contrast: float = 0.4
    """Contrast: spread about the patch's mean luma scaled by a factor in 1 +/- this."""
    saturation: float = 0.4
    """Saturation: chroma scaled by a factor in 1 +/- this."""
    hue: float = 0.1
    """Hue: chroma rotated by up to +/- this fraction of a full turn (0.5 is any hue)."""
    gray_prob: float = 0.2
    """Probability that the view is turned gray (3 equal channels)."""
    blur_prob: float = 0.5
    """Probability of a Gaussian blur."""
    blur_sigma_min: float = 0.1
    """Smallest standard deviation of the blur, in pixels."""
    blur_sigma_max: float = 2.0
    """Largest standard deviation of the blur, in pixels (SimCLR: 0.1 to 2.0)."""

    def __post_init__(self) -> None:
        if not 0 <= self.stretch < 0.5:
            raise ValueError(f"stretch must be in [0, 0.5), got {self.stretch}")
        for name in ("flip_prob", "colour_prob", "gray_prob", "blur_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")
        if not 0 < self.blur_sigma_min <= self.blur_sigma_max:
            raise ValueError(
                "need 0 < blur_sigma_min <= blur_sigma_max, "
                f"got {self.blur_sigma_min}, {self.blur_sigma_max}"
            )


@dataclass
class AugmentDraw:
    """The random parameters of one augmentation pass over N patches (arrays of length N)."""

    scale: np.ndarray
    """Stretch factor about the patch centre, in 1 +/- stretch."""
    flip: np.ndarray
    """bool: mirrored left to right."""
    colour: np.ndarray
    """bool: the colour distortion is applied."""
    hue: np.ndarray
    """Rotation of the chroma plane, radians."""
    saturation: np.ndarray
    """Chroma scale factor."""
    brightness: np.ndarray
    """Factor on all channels."""
    contrast: np.ndarray
    """Factor on the spread about the mean luma."""
    gray: np.ndarray
    """bool: turned gray."""
    blur: np.ndarray
    """bool: blurred."""
    sigma: np.ndarray
    """Standard deviation of the blur, pixels."""


def draw_augment(n: int, rng: np.random.Generator, cfg: AugmentConfig) -> AugmentDraw:
    """All random parameters of `augment` for n patches, in the order it has always drawn
    them (stretch, flip, colour, gray, blur), so a seed gives the same views as before."""
    return AugmentDraw(
        scale=1.0 + rng.uniform(-cfg.stretch, cfg.stretch, n),
        flip=rng.random(n) < cfg.flip_prob,
        colour=rng.random(n) < cfg.colour_prob,
        hue=rng.uniform(-cfg.hue, cfg.hue, n) * 2 * np.pi,
        saturation=rng.uniform(1 - cfg.saturation, 1 + cfg.saturation, n),
        brightness=rng.uniform(1 - cfg.brightness, 1 + cfg.brightness, n),
        contrast=rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, n),
        gray=rng.random(n) < cfg.gray_prob,
        blur=rng.random(n) < cfg.blur_prob,
        sigma=rng.uniform(cfg.blur_sigma_min, cfg.blur_sigma_max, n),
    )


def two_views(
    patches: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Two independently augmented copies of N x S x S x 3 uint8 patches (same shape)."""
    return augment(patches, rng, cfg), augment(patches, rng, cfg)


def augment(
    patches: np.ndarray,
    rng: np.random.Generator | None,
    cfg: AugmentConfig,
    draw: AugmentDraw | None = None,
) -> np.ndarray:
    """One augmented view of N x S x S x 3 uint8 patches; the input is not modified.

    draw: the random parameters to apply (then rng is not used); None draws them from rng.
    """
    if patches.ndim != 4 or patches.shape[3] != 3 or patches.dtype != np.uint8:
        raise ValueError(f"patches must be N x H x W x 3 uint8, got {patches.shape}")
    if draw is None:
        draw = draw_augment(len(patches), rng, cfg)
    out = _stretch_and_flip(patches, draw)
    _colour(out, draw)
    _gray(out, draw)
    _blur(out, draw)
    return out


def _stretch_and_flip(patches: np.ndarray, draw: AugmentDraw) -> np.ndarray:
    n, h, w, _ = patches.shape
    scale = draw.scale
    flip = np.where(draw.flip, -1.0, 1.0)
    cx, cy = (w - 1) / 2, (h - 1) / 2  # centre in OpenCV's pixel-centre coordinates
    out = np.empty_like(patches)
    for i in range(n):
        sx, sy = flip[i] * scale[i], scale[i]
        m = np.array([[sx, 0.0, cx - sx * cx], [0.0, sy, cy - sy * cy]])
        # Replicate, not a constant: a shrunk patch should not grow a frame of one colour
        # that both views might share and the loss could match on.
        cv2.warpAffine(patches[i], m, (w, h), out[i], cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
    return out


def _colour(views: np.ndarray, draw: AugmentDraw) -> None:
    # In place on N x S x S x 3: one 3x4 colour matrix per patch, one cv2.transform call.
    angle, sat, bright, contrast = draw.hue, draw.saturation, draw.brightness, draw.contrast
    idx = np.flatnonzero(draw.colour)
    chroma = np.zeros((idx.size, 3, 3))  # M x 3 x 3 in YIQ: luma kept, chroma turned, scaled
    chroma[:, 0, 0] = 1
    cos, sin = np.cos(angle[idx]) * sat[idx], np.sin(angle[idx]) * sat[idx]
    chroma[:, 1, 1], chroma[:, 1, 2], chroma[:, 2, 1], chroma[:, 2, 2] = cos, -sin, sin, cos
    gain = (contrast[idx] * bright[idx])[:, None, None] * (YIQ_TO_BGR @ chroma @ BGR_TO_YIQ)
    # Contrast pivots on the mean luma of the brightened patch (chroma leaves luma alone).
    mean_bgr = np.array([cv2.mean(views[i])[:3] for i in idx]).reshape(-1, 3)  # M x 3
    pivot = (1 - contrast[idx]) * bright[idx] * (mean_bgr @ BGR_TO_YIQ[0])  # M
    maps = np.concatenate([gain, np.repeat(pivot[:, None, None], 3, axis=1)], axis=2)  # M x 3 x 4
    for i, m in zip(idx, maps, strict=True):
        cv2.transform(views[i], m, views[i])


def _gray(views: np.ndarray, draw: AugmentDraw) -> None:
    idx = np.flatnonzero(draw.gray)
    if idx.size:
        gray = _stacked(views[idx], cv2.COLOR_BGR2GRAY)  # M x S x S
        views[idx] = gray[..., None]


def _blur(views: np.ndarray, draw: AugmentDraw) -> None:
    sigma = draw.sigma
    for i in np.flatnonzero(draw.blur):
        # ksize (0, 0): OpenCV sizes the kernel from sigma (about 6 sigma + 1).
        cv2.GaussianBlur(views[i], (0, 0), sigma[i], views[i], sigma[i], cv2.BORDER_REFLECT_101)


def _stacked(images: np.ndarray, code: int) -> np.ndarray:
    # One cvtColor for the whole batch: M x H x W x C is a valid (M*H) x W x C image.
    m, h, w = images.shape[:3]
    out = cv2.cvtColor(np.ascontiguousarray(images).reshape(m * h, w, -1), code)
    return out.reshape(m, h, w, *out.shape[2:])
