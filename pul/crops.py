"""SiamFC crops: a square around a target, with context, resized to the network's input.

Coordinates: boxes are (x, y, w, h) in 0-based pixel-edge coordinates, the convention of
the whole project (pixel column j spans [j, j + 1); the synthetic benchmark's ground truth
and the got10k toolkit use it). Centres are (cx, cy) in the same coordinates, so a box's
centre is (x + w/2, y + h/2). OpenCV samples at pixel centres (pixel j at j); the half-pixel
shift between the two is handled here and nowhere else.

A crop of side `size` (image pixels) around `center_xy`, resized to `out_size`, maps an image
point p to crop point (p - center) * out_size / size + out_size / 2. Parts of the square
outside the image are filled with a constant colour, by SiamFC convention the mean colour of
the frame, so that padding looks like nothing in particular.

Sizes: the exemplar square has side `context_size(w, h)`; the search square is that times
INSTANCE_SIZE / EXEMPLAR_SIZE, so the target has the same scale in both crops.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

EXEMPLAR_SIZE = 127
"""Side of the exemplar (template) crop fed to the network, in pixels."""
INSTANCE_SIZE = 255
"""Side of the instance (search) crop fed to the network, in pixels."""
CONTEXT = 0.5
"""Context margin around the target, as a fraction of w + h (SiamFC)."""


def box_center(box: Sequence[float]) -> tuple[float, float]:
    """Centre (cx, cy) of an (x, y, w, h) box, in pixel-edge coordinates."""
    x, y, w, h = (float(v) for v in box)
    return x + w / 2, y + h / 2


def center_box(center_xy: Sequence[float], size_wh: Sequence[float]) -> np.ndarray:
    """The (x, y, w, h) box with centre `center_xy` and size `size_wh` (float64)."""
    (cx, cy), (w, h) = center_xy, size_wh
    return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float64)


def context_size(w: float, h: float, context: float = CONTEXT) -> float:
    """Side of SiamFC's exemplar square: sqrt((w + p)(h + p)) with p = context * (w + h)."""
    p = context * (w + h)
    return float(np.sqrt((w + p) * (h + p)))


def search_size(
    exemplar_side: float, exemplar_size: int = EXEMPLAR_SIZE, instance_size: int = INSTANCE_SIZE
) -> float:
    """Side in the image of the search square that goes with an exemplar square."""
    return exemplar_side * instance_size / exemplar_size


def average_colour(image: np.ndarray) -> tuple[float, ...]:
    """Mean colour of an HxWxC image, per channel: SiamFC's padding value."""
    channels = image.shape[-1]
    if channels <= 4:  # cv2.mean: the same values, ~60x faster than numpy's mean on uint8
        return tuple(float(v) for v in cv2.mean(image)[:channels])
    return tuple(float(v) for v in image.reshape(-1, channels).mean(axis=0))


def crop_matrix(center_xy: Sequence[float], size: float, out_size: int) -> np.ndarray:
    """The 2x3 affine map from image pixel centres to crop pixel centres (OpenCV's form)."""
    s = out_size / size
    cx, cy = center_xy
    return np.array(
        [
            [s, 0.0, (0.5 - cx) * s + out_size / 2 - 0.5],
            [0.0, s, (0.5 - cy) * s + out_size / 2 - 0.5],
        ]
    )


def crop_and_resize(
    image: np.ndarray,
    center_xy: Sequence[float],
    size: float,
    out_size: int,
    border_value: Sequence[float] | None = None,
) -> np.ndarray:
    """Square of side `size` image pixels centred at `center_xy`, resized to out_size^2.

    image: HxWxC uint8 (BGR in this project); returns out_size x out_size x C, same dtype.
    border_value: the colour outside the image; None takes the image's average colour
    (pass it in when cropping one frame several times: it costs a pass over the frame).
    One bilinear warp with sub-pixel centre and size, no intermediate padded copy.
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if border_value is None:
        border_value = average_colour(image)
    return cv2.warpAffine(
        image,
        crop_matrix(center_xy, size, out_size),
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in border_value),
    )


def to_tensor(crops: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Crops (NxHxWx3 or HxWx3, uint8) -> the network's input, Nx3xHxW float32 0..255.

    The uint8 array crosses to the device first and becomes float there (4x less to copy).
    """
    batch = np.ascontiguousarray(crops[None] if crops.ndim == 3 else crops)
    return torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float()
