"""SiamFC crops: where the target lands, the sizes, and the average-colour padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pul.crops import (
    average_colour,
    box_center,
    center_box,
    context_size,
    crop_and_resize,
    crop_matrix,
    search_size,
    to_tensor,
)


def noise_with_square(box: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """A dark noise image (values < 100) with a white square filling `box` (pixel edges)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 100, (120, 160, 3), dtype=np.uint8)
    x, y, w, h = box
    image[y : y + h, x : x + w] = 255
    return image


def black_with_square(box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((120, 160, 3), np.uint8)
    x, y, w, h = box
    image[y : y + h, x : x + w] = 255
    return image


def centroid(crop: np.ndarray) -> np.ndarray:
    """(x, y) brightness-weighted centroid, in pixel-edge coordinates of the crop."""
    weight = crop[..., 0].astype(np.float64)
    ys, xs = np.indices(weight.shape) + 0.5
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def test_context_and_search_sizes():
    assert context_size(32, 32) == pytest.approx(64.0)
    assert context_size(40, 20) == pytest.approx(math.sqrt(70 * 50))  # p = 30
    assert context_size(40, 20, context=0.0) == pytest.approx(math.sqrt(800))
    assert search_size(127.0) == pytest.approx(255.0)
    assert search_size(64.0) == pytest.approx(64 * 255 / 127)


def test_box_centre_round_trip():
    assert box_center((10, 20, 30, 41)) == (25.0, 40.5)
    np.testing.assert_allclose(center_box((25.0, 40.5), (30, 41)), [10, 20, 30, 41])


def test_unit_scale_crop_is_an_exact_copy_centred_on_the_target():
    box = (50, 30, 20, 20)
    image = noise_with_square(box)
    crop = crop_and_resize(image, box_center(box), size=40, out_size=40)
    np.testing.assert_array_equal(crop, image[20:60, 40:80])
    np.testing.assert_array_equal(crop[10:30, 10:30], 255)


@pytest.mark.parametrize("box", [(50, 30, 20, 20), (33, 47, 15, 9), (90, 10, 31, 12)])
def test_target_lands_at_the_centre_at_any_scale(box):
    image = black_with_square(box)
    side = context_size(box[2], box[3])
    for out_size in (127, 255, 64):
        crop = crop_and_resize(image, box_center(box), side, out_size, border_value=(0, 0, 0))
        assert crop.shape == (out_size, out_size, 3) and crop.dtype == np.uint8
        np.testing.assert_allclose(centroid(crop), [out_size / 2] * 2, atol=0.02)
        # and at the scale out_size / side: the square's area in the crop
        area = crop[..., 0].sum() / 255
        assert area == pytest.approx(box[2] * box[3] * (out_size / side) ** 2, rel=0.02)


def test_sub_pixel_centre_moves_the_crop_by_a_fraction():
    box = (50, 30, 20, 20)
    image = black_with_square(box)
    cx, cy = box_center(box)
    crop = crop_and_resize(image, (cx + 0.25, cy - 0.5), size=40, out_size=40)
    # the target sits a quarter pixel left of and half a pixel below the centre now
    np.testing.assert_allclose(centroid(crop), [20 - 0.25, 20 + 0.5], atol=0.02)


def test_padding_uses_the_average_colour():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    mean = average_colour(image)
    np.testing.assert_allclose(mean, image.reshape(-1, 3).mean(axis=0))
    # a crop centred on the top-left corner: its top-left quarter lies outside the image
    crop = crop_and_resize(image, (0.0, 0.0), size=40, out_size=40)
    outside = crop[:19, :19].reshape(-1, 3)
    np.testing.assert_array_equal(outside, np.tile(np.round(mean).astype(np.uint8), (361, 1)))
    np.testing.assert_array_equal(crop[20:, 20:], image[:20, :20])
    grey = crop_and_resize(image, (0.0, 0.0), 40, 40, border_value=(7, 8, 9))
    np.testing.assert_array_equal(grey[0, 0], [7, 8, 9])


def test_crop_matrix_maps_the_centre_to_the_crop_centre():
    m = crop_matrix((30.0, 20.0), size=64, out_size=128)
    # pixel-centre coordinates: the edge point (30, 20) is the pixel centre (29.5, 19.5)
    np.testing.assert_allclose(m @ [29.5, 19.5, 1.0], [63.5, 63.5])
    np.testing.assert_allclose(m[:, :2], np.eye(2) * 2.0)


def test_to_tensor_gives_float_nchw():
    crops = np.zeros((3, 127, 127, 3), np.uint8)
    crops[1, 5, 6, 2] = 200
    t = to_tensor(crops)
    assert t.shape == (3, 3, 127, 127) and t.dtype == torch.float32
    assert t[1, 2, 5, 6] == 200.0
    assert to_tensor(crops[0]).shape == (1, 3, 127, 127)
