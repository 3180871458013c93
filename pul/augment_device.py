"""pul.augment's views for a whole batch at once, on the images' device (GPU in training).

The same operations, distributions and order as `pul.augment.augment` (read its docstring):
stretch with the flip folded in (one grid_sample, border replicated), the affine colour map
of YIQ (contrast pivots on the mean luma), grayscale with OpenCV's weights, Gaussian blur
with OpenCV's kernel size for each sample's sigma. Every sample goes through every
operation, with an identity (unit colour map, delta kernel, the sample itself) where its
draw says "not applied": no mask indexing, no `.item()`, so nothing waits for the device.

The random draws are made for all N at once with torch's generator on the images' device,
in pul.augment's order; `DeviceAugmentDraw.numpy()` hands them to the CPU path, which
applies the same parameters (that is how the two paths are tested against each other).

Precision: computed in float32 and rounded once at the end, where the uint8 path rounds
after every operation; the values stay in 0..255 (clamped after the colour map, the one
operation that can leave the range, as cv2.transform saturates).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from pul.augment import BGR_TO_YIQ, YIQ_TO_BGR, AugmentConfig, AugmentDraw
from pul.warp_device import warp_batch

# OpenCV's BGR -> gray weights (cv2.COLOR_BGR2GRAY).
GRAY_BGR = (0.114, 0.587, 0.299)


@dataclass
class DeviceAugmentDraw:
    """pul.augment.AugmentDraw as tensors of length N on one device (bool or float32)."""

    scale: torch.Tensor
    flip: torch.Tensor
    colour: torch.Tensor
    hue: torch.Tensor
    saturation: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    gray: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor

    def numpy(self) -> AugmentDraw:
        """The same draw for pul.augment.augment (copies to the host: for tests, not steps)."""
        return AugmentDraw(**{f.name: getattr(self, f.name).cpu().numpy() for f in fields(self)})


def draw_augment_batch(
    n: int,
    cfg: AugmentConfig,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> DeviceAugmentDraw:
    """The random parameters of one view of n images, drawn on `device` (the generator, if
    any, must live there too), with pul.augment.draw_augment's distributions."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator, device=device)

    def chance(p: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) < p

    return DeviceAugmentDraw(
        scale=uniform(1 - cfg.stretch, 1 + cfg.stretch),
        flip=chance(cfg.flip_prob),
        colour=chance(cfg.colour_prob),
        hue=uniform(-cfg.hue, cfg.hue) * (2 * np.pi),
        saturation=uniform(1 - cfg.saturation, 1 + cfg.saturation),
        brightness=uniform(1 - cfg.brightness, 1 + cfg.brightness),
        contrast=uniform(1 - cfg.contrast, 1 + cfg.contrast),
        gray=chance(cfg.gray_prob),
        blur=chance(cfg.blur_prob),
        sigma=uniform(cfg.blur_sigma_min, cfg.blur_sigma_max),
    )


def augment_batch(
    images: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator | None = None,
    draw: DeviceAugmentDraw | None = None,
) -> torch.Tensor:
    """One augmented view: N x 3 x S x S BGR (uint8 or float 0..255, any device) -> float32
    N x 3 x S x S, integer values in 0..255. draw: parameters to apply (None: drawn here).

    An operation whose probability in cfg is 0 is skipped (a config fact, not a data one).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x H x W, got {tuple(images.shape)}")
    if draw is None:
        draw = draw_augment_batch(len(images), cfg, images.device, generator)
    out = images.float()
    if cfg.stretch > 0 or cfg.flip_prob > 0:
        out = _stretch_and_flip(out, draw)
    if cfg.colour_prob > 0:
        out = _colour(out, draw)
    if cfg.gray_prob > 0:
        out = _gray(out, draw)
    if cfg.blur_prob > 0:
        out = _blur(out, draw, kernel_size(cfg.blur_sigma_max))
    # No clamp needed here: after the colour map every operation is a convex combination.
    return out.round_()


def two_views_batch(
    images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently augmented views of N x 3 x S x S images, made as one batch of 2N."""
    views = augment_batch(torch.cat([images, images]), cfg, generator)
    return views[: len(images)], views[len(images) :]


def kernel_size(sigma: float) -> int:
    """OpenCV's Gaussian kernel side for a uint8 image and ksize (0, 0): round(6 sigma + 1),
    made odd."""
    return int(np.rint(6 * sigma + 1)) | 1


def _stretch_and_flip(images: torch.Tensor, d: DeviceAugmentDraw) -> torch.Tensor:
    # Output pixel q reads input (q - c) / s + c about the centre c = (side - 1) / 2, as
    # cv2.warpAffine does with pul.augment's matrix; a flip is a negative x scale.
    h, w = images.shape[2:]
    sx = torch.where(d.flip, -d.scale, d.scale)
    zero = torch.zeros_like(sx)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    inverse = torch.stack(
        [
            torch.stack([1 / sx, zero, cx - cx / sx], -1),
            torch.stack([zero, 1 / d.scale, cy - cy / d.scale], -1),
        ],
        1,
    )  # N x 2 x 3
    return warp_batch(images, inverse, (h, w), padding_mode="border")


def _colour(images: torch.Tensor, d: DeviceAugmentDraw) -> torch.Tensor:
    # The 3x4 map of pul.augment._colour for every sample, identity where not applied.
    to_yiq, to_bgr = _yiq(images.device)
    cos, sin = torch.cos(d.hue) * d.saturation, torch.sin(d.hue) * d.saturation
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    chroma = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], -1).view(-1, 3, 3)
    gain = (d.contrast * d.brightness)[:, None, None] * (to_bgr @ chroma @ to_yiq)  # N x 3 x 3
    mean_luma = images.mean(dim=(2, 3)) @ to_yiq[0]  # N
    pivot = (1 - d.contrast) * d.brightness * mean_luma  # N
    eye = torch.eye(3, device=images.device)
    gain = torch.where(d.colour[:, None, None], gain, eye)
    pivot = torch.where(d.colour, pivot, zero)
    out = torch.einsum("nij,njhw->nihw", gain, images) + pivot[:, None, None, None]
    return out.clamp_(0, 255)  # cv2.transform saturates to uint8


def _gray(images: torch.Tensor, d: DeviceAugmentDraw) -> torch.Tensor:
    b, g, r = GRAY_BGR
    gray = b * images[:, 0:1] + g * images[:, 1:2] + r * images[:, 2:3]  # N x 1 x H x W
    return torch.where(d.gray[:, None, None, None], gray.expand_as(images), images)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """N standard deviations -> N x size normalised 1-D Gaussian kernels, each cut to the
    size OpenCV gives it (kernel_size) and zero-padded to `size` (odd, at least the largest)."""
    r = size // 2
    taps = torch.arange(-r, r + 1, device=sigma.device, dtype=sigma.dtype)  # size
    radius = torch.div(torch.round(6 * sigma + 1), 2, rounding_mode="floor")  # kernel_size // 2
    kernel = torch.exp(-(taps**2) / (2 * sigma[:, None] ** 2))  # N x size
    kernel = torch.where(taps.abs() <= radius[:, None], kernel, 0.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


def _blur(images: torch.Tensor, d: DeviceAugmentDraw, largest: int) -> torch.Tensor:
    # Separable, as one grouped convolution per axis: every (sample, channel) plane is a
    # group with its own kernel; a delta kernel where the draw says "no blur".
    n, c, h, w = images.shape
    r = largest // 2
    delta = (torch.arange(-r, r + 1, device=images.device) == 0).to(images.dtype)
    kernel = torch.where(d.blur[:, None], gaussian_kernels(d.sigma, largest), delta)
    kernel = kernel.repeat_interleave(c, dim=0)  # (N C) x K
    planes = images.reshape(1, n * c, h, w)
    # mode "reflect" is OpenCV's BORDER_REFLECT_101 (the edge pixel is not repeated).
    planes = F.pad(planes, (r, r, 0, 0), mode="reflect")
    planes = F.conv2d(planes, kernel[:, None, None, :], groups=n * c)
    planes = F.pad(planes, (0, 0, r, r), mode="reflect")
    planes = F.conv2d(planes, kernel[:, None, :, None], groups=n * c)
    return planes.view(n, c, h, w)


@functools.lru_cache(maxsize=8)
def _yiq(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Copied to a device once (a copy from the host can wait for the device), then reused.
    return (
        torch.tensor(BGR_TO_YIQ, dtype=torch.float32, device=device),
        torch.tensor(YIQ_TO_BGR, dtype=torch.float32, device=device),
    )
