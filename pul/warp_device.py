"""Affine warps of image batches on the images' device, in OpenCV's pixel conventions.

cv2.warpAffine with INTER_LINEAR reads output pixel q from the input at M^-1 q, pixels at
integer coordinates (pixel j's centre is j). grid_sample reads at normalised coordinates;
with align_corners=False pixel j of a side of n pixels spans [2j/n - 1, 2(j+1)/n - 1], so
its centre is (2j + 1)/n - 1. `affine_theta` turns a map between OpenCV pixel coordinates
into affine_grid's theta, so the geometry written for the OpenCV path (pul.crops.crop_matrix,
the stretch of pul.augment) carries over unchanged and one grid_sample warps the whole batch.

Interpolation differs from OpenCV's only in precision: OpenCV's uint8 warp snaps sample
points to 1/32 pixel and rounds its weights to fixed point; grid_sample is exact in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def affine_theta(
    inverse: torch.Tensor, in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """N x 2 x 3 maps from output to input pixel coordinates (OpenCV's, centres at integers)
    -> N x 2 x 3 theta for affine_grid(..., align_corners=False), which maps normalised
    output coordinates to normalised input coordinates."""
    (hi, wi), (ho, wo) = in_hw, out_hw
    lin, shift = inverse[..., :2], inverse[..., 2]  # N x 2 x 2, N x 2
    # Input pixel read at the output's centre, then per normalised output unit (half a side).
    centre = lin[..., 0] * ((wo - 1) / 2) + lin[..., 1] * ((ho - 1) / 2) + shift  # N x 2
    per_unit = torch.stack([lin[..., 0] * (wo / 2), lin[..., 1] * (ho / 2)], dim=-1)
    # Input pixels -> normalised input coordinates, row x by 2 / wi and row y by 2 / hi.
    rows = [
        torch.cat([per_unit[:, k] * (2 / side), ((2 * centre[:, k] + 1) / side - 1)[:, None]], 1)
        for k, side in ((0, wi), (1, hi))
    ]
    return torch.stack(rows, dim=1)


def warp_batch(
    images: torch.Tensor, inverse: torch.Tensor, out_hw: tuple[int, int], padding_mode: str
) -> torch.Tensor:
    """Bilinear warp: float N x C x H x W -> N x C x out_h x out_w, output pixel q read at
    inverse[i] @ (q, 1). padding_mode "border" is OpenCV's BORDER_REPLICATE; "zeros" is
    BORDER_CONSTANT with 0 (crop_and_resize_batch pads with another colour)."""
    n, c = images.shape[:2]
    theta = affine_theta(inverse.to(images.dtype), images.shape[2:], out_hw)
    grid = F.affine_grid(theta, [n, c, *out_hw], align_corners=False)
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
    )


def crop_and_resize_batch(
    images: torch.Tensor, centres: torch.Tensor, sizes: torch.Tensor, out_size: int
) -> torch.Tensor:
    """pul.crops.crop_and_resize for a batch, one crop per image, padded with each image's
    average colour; every argument is a tensor on the images' device (nothing read back).

    images: N x C x H x W (uint8 or float); centres: N x 2 (cx, cy) in pixel-edge
    coordinates; sizes: N sides of the squares in image pixels -> float N x C x S x S,
    S = out_size, not rounded. For uint8 images the padding colour is rounded, as OpenCV
    rounds a border value to the image's type.
    (pul/device_crops.py's crop_batch does the same for the tracker from host-side centres.)
    """
    # Inverse of crop_matrix: p = (q + 0.5 - S/2) * size / S + centre - 0.5.
    k = sizes / out_size  # N
    shift = centres - 0.5 + (0.5 - out_size / 2) * k[:, None]  # N x 2
    zero = torch.zeros_like(k)
    inverse = torch.stack(
        [torch.stack([k, zero, shift[:, 0]], -1), torch.stack([zero, k, shift[:, 1]], -1)], 1
    )
    source = images.float()
    fill = _mean_colour(images)[:, :, None, None]  # N x C x 1 x 1
    # Zero padding around (image - fill), then + fill: every tap outside reads the fill colour.
    out = warp_batch(source - fill, inverse, (out_size, out_size), padding_mode="zeros")
    return out + fill


def _mean_colour(images: torch.Tensor) -> torch.Tensor:
    """N x C mean colours; for uint8 the exact mean (an integer sum, independent of the order
    of summation) rounded to an integer, as OpenCV's constant border of a uint8 image."""
    if images.dtype != torch.uint8:
        return images.float().mean(dim=(2, 3))
    pixels = images.shape[2] * images.shape[3]
    # int32 holds the sum of up to 8.4 M uint8 pixels and adds 2.5x faster than int64 on CPU
    exact = torch.int32 if 255 * pixels < 2**31 else torch.int64
    total = images.sum(dim=(2, 3), dtype=exact)
    return (total.double() / pixels).round().float()
