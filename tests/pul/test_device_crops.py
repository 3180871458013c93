"""Device crops (`pul.device_crops`) against OpenCV's (`pul.crops.crop_and_resize`).

Measured on the noise image below (the worst case: every pixel differs from its
neighbours): mean |difference| 0.19-0.33 gray levels, max 0.92, over the crops of
CROPS. OpenCV warps uint8 in fixed point (1/32-pixel positions) and rounds to whole gray
levels; the device crop is float, so the difference is that rounding and little more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pul.crops import average_colour, crop_and_resize
from pul.device_crops import crop_batch, crop_grid, frames_to_device, mean_colour

CROPS = [
    ((200.3, 120.7), 64.2, 127),  # sub-pixel centre and size, inside
    ((123.45, 67.89), 20.5, 255),  # a small square blown up 12x
    ((10.5, 5.25), 150.0, 255),  # past the top-left corner
    ((390.0, 230.0), 300.0, 255),  # past the bottom-right corner
    ((200.0, 120.0), 700.0, 255),  # larger than the frame on every side
    ((-20.0, 300.0), 100.0, 127),  # wholly outside: all fill
]


def noise(seed: int = 0, size: tuple[int, int] = (240, 400)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def device_crop(image: np.ndarray, center, size: float, out: int, fill) -> np.ndarray:
    frames = frames_to_device([image], "cpu")
    return crop_batch(frames, [center], [size], out, torch.tensor(fill))[0].numpy()


@pytest.mark.parametrize(("center", "size", "out"), CROPS)
def test_device_crop_matches_opencv_within_a_gray_level(center, size, out):
    image = noise()
    fill = average_colour(image)
    ref = crop_and_resize(image, center, size, out, fill).astype(np.float64)
    got = device_crop(image, center, size, out, fill).transpose(1, 2, 0)
    assert got.shape == (out, out, 3)
    diff = np.abs(got - ref)
    assert diff.mean() < 0.4 and diff.max() < 1.0


def test_unit_scale_crop_is_the_pixels_themselves():
    """A pixel-aligned 1:1 crop samples pixel centres: the pixels themselves, up to the
    float32 rounding of grid_sample's normalised coordinates (measured max 0.003 gray
    levels; align_corners=True would shift the samples by up to half a pixel: tens of gray
    levels on noise)."""
    image = noise(1)
    got = device_crop(image, (60.0, 40.0), 40, 40, (0.0, 0.0, 0.0)).transpose(1, 2, 0)
    np.testing.assert_allclose(got, image[20:60, 40:80], rtol=0, atol=0.01)


def test_outside_the_frame_is_exactly_the_fill():
    image = noise(2)
    fill = (12.5, 100.25, 250.0)
    got = device_crop(image, (-20.0, 300.0), 100.0, 64, fill)
    np.testing.assert_array_equal(got, np.broadcast_to(np.float32(fill)[:, None, None], got.shape))
    # half in: the left half of this crop lies left of the frame
    got = device_crop(image, (0.0, 120.0), 64.0, 64, fill)
    np.testing.assert_array_equal(
        got[:, :, :32], np.broadcast_to(np.float32(fill)[:, None, None], (3, 64, 32))
    )
    assert np.abs(got[:, :, 32:] - np.float32(fill)[:, None, None]).max() > 50


def test_a_pyramid_per_frame_in_one_call_equals_crops_one_by_one():
    images = [noise(3), noise(4)]
    frames = frames_to_device(images, "cpu")  # 2 x 3 x 240 x 400
    fills = mean_colour(frames)  # 2 x 3
    centers = [(100.5, 80.0)] * 3 + [(300.0, 200.25)] * 3
    sizes = [90.0, 100.0, 111.0, 50.0, 60.0, 70.0]
    batched = crop_batch(frames, centers, sizes, 63, fills)
    assert batched.shape == (6, 3, 63, 63)
    for i in range(6):
        f = i // 3
        alone = crop_batch(frames[f], [centers[i]], [sizes[i]], 63, fills[f])
        assert torch.equal(batched[i], alone[0])  # bit for bit: no batch dependence


def test_mean_colour_is_exact_and_matches_numpy():
    images = [noise(5), noise(6)]
    frames = frames_to_device(images, "cpu")
    both = mean_colour(frames)
    for image, row in zip(images, both, strict=True):
        np.testing.assert_allclose(row.numpy(), average_colour(image), rtol=1e-6)
        assert torch.equal(mean_colour(frames_to_device([image], "cpu"))[0], row)


def test_grid_maps_pixel_edges_to_grid_sample_coordinates():
    # a crop spanning the whole 400 x 240 frame: its first and last samples sit half a
    # crop pixel inside the frame's edges
    grid = crop_grid([(200.0, 120.0)], [400.0], 4, (240, 400))
    assert grid.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(grid[0, 0, :, 0].numpy(), [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(grid[0, :, 0, 1].numpy(), [-1.25, -5 / 12, 5 / 12, 1.25])
    with pytest.raises(ValueError, match="positive"):
        crop_grid([(1.0, 1.0)], [0.0], 4, (240, 400))
