"""SiamFC crops cut on the device: `pul.crops.crop_and_resize` as one `grid_sample`.

The geometry is `pul.crops.crop_matrix`'s: crop pixel u (0-based index) of a crop of side
`size` around the pixel-edge centre c samples the image at pixel-edge coordinate

    p = c + (u + 0.5 - out_size / 2) * size / out_size

(OpenCV's pixel-centre coordinate is p - 0.5). `grid_sample` with `align_corners=False`
reads normalised coordinates whose -1 and +1 are the outer EDGES of the border pixels, so
p maps to 2 p / W - 1 with no half-pixel term: the same mapping as cv2.warpAffine with
`crop_matrix`, sample for sample.

Padding: cv2 blends border pixels with the constant fill; grid_sample's zero padding does
the same with zeros. So we sample (frame - fill) and add fill back: outside the frame the
crop is exactly `fill`, and at the frame's edge the blend is the same as OpenCV's.

What still differs from `crop_and_resize`: OpenCV computes a uint8 warp in fixed point
(sample positions on a 1/32 pixel grid, 15-bit weights) and rounds to uint8; here the crop
is float32 and not rounded. tests/pul/test_device_crops.py measures the difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | Sequence
"""Host numbers (numpy or lists): centres and sizes come from the tracker's host state."""


def to_device(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """A host array onto `device` without waiting for the device.

    On CUDA a copy from ordinary (pageable) host memory synchronises the stream: the host
    would wait for every queued kernel. Through pinned memory the copy is asynchronous
    (PyTorch's pinned-memory allocator keeps the buffer until the copy is done), so the
    tracker's one read-back per frame stays its only sync.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if torch.device(device).type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def frames_to_device(frames: Sequence[np.ndarray], device: torch.device | str) -> torch.Tensor:
    """B frames (HxWxC uint8, one size) -> BxCxHxW float32 on `device`.

    The uint8 pixels cross to the device (4x less to copy than float) and become float
    there; one copy for all B frames.
    """
    batch = np.stack(frames) if len(frames) > 1 else frames[0][None]
    return to_device(batch, device).permute(0, 3, 1, 2).float()


def mean_colour(frames: torch.Tensor) -> torch.Tensor:
    """Mean colour per frame and channel of BxCxHxW frames holding whole numbers -> BxC.

    The sum is taken in int64, which is exact whatever the order of summation: the result
    does not depend on the device, the thread count or the batch (float32 sums do).
    """
    total = frames.to(torch.int64).sum(dim=(2, 3))
    return (total.double() / (frames.shape[2] * frames.shape[3])).float()


def crop_grid(
    centers: ArrayLike,
    sizes: ArrayLike,
    out_size: int,
    frame_hw: tuple[int, int],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """N x out x out x 2 sampling grid on `device` (grid_sample's x, y; [-1, 1] in the frame).

    centers: Nx2 pixel-edge (cx, cy); sizes: N square sides in image pixels. The N x out
    column and row coordinates are computed in float64 on the host (a few numbers per crop)
    and only they cross to the device, where they are spread into the grid: a full grid of
    48 search crops would be 25 MB to copy per frame.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    if len(centers) != len(sizes):
        raise ValueError(f"{len(centers)} centres for {len(sizes)} sizes")
    if not (sizes > 0).all():
        raise ValueError(f"crop sizes must be positive, got {sizes.tolist()}")
    height, width = frame_hw
    steps = (np.arange(out_size, dtype=np.float64) + 0.5 - out_size / 2) / out_size
    edges = centers[:, :, None] + steps * sizes[:, None, None]  # N x 2 x out, pixel edges
    normalised = 2.0 * edges / np.array([width, height], dtype=np.float64)[:, None] - 1.0
    xy = to_device(normalised.astype(np.float32), device)  # N x 2 x out
    n = len(sizes)
    xs = xy[:, 0, None, :].expand(n, out_size, out_size)  # varies along the columns
    ys = xy[:, 1, :, None].expand(n, out_size, out_size)  # varies along the rows
    return torch.stack((xs, ys), dim=-1)


def crop_batch(
    frames: torch.Tensor,
    centers: ArrayLike,
    sizes: ArrayLike,
    out_size: int,
    fill: torch.Tensor | Sequence[float],
) -> torch.Tensor:
    """N square crops, resized to out_size^2, in ONE grid_sample -> N x C x out x out float.

    frames: CxHxW (every crop from it) or BxCxHxW float; with B frames, N = B*k and crops
    i*k .. i*k + k - 1 come from frame i (a scale pyramid per frame).
    centers: Nx2 pixel-edge (cx, cy); sizes: N sides in image pixels (as `crop_and_resize`).
    fill: the colour outside the frame, C values (all frames) or BxC (one per frame).
    """
    if frames.dim() == 3:
        frames = frames[None]
    b, c, height, width = frames.shape
    grid = crop_grid(centers, sizes, out_size, (height, width), frames.device)
    if len(grid) % b:
        raise ValueError(f"{len(grid)} crops do not split evenly over {b} frames")
    k = len(grid) // b
    fill = torch.as_tensor(fill, dtype=frames.dtype, device=frames.device).reshape(-1, c)
    fill = fill.expand(b, c)[:, :, None, None]  # B x C x 1 x 1
    # the k crops of a frame stacked along the grid's height: one call for all N crops
    grid = grid.reshape(b, k * out_size, out_size, 2)
    crops = F.grid_sample(
        frames - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # B x C x k*out x out
    crops = crops + fill
    return (
        crops.reshape(b, c, k, out_size, out_size)
        .transpose(1, 2)
        .reshape(-1, c, out_size, out_size)
    )
