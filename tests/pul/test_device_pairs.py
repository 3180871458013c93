"""Batched pair crops on the device against pul.pairs.make_pair and crop_and_resize: the same
draw gives the same crops (within a gray level) and the same offsets; the warp helper keeps
OpenCV's pixel conventions; nothing reads a value back to the host."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pul.crops import box_center, context_size, crop_and_resize
from pul.pairs import PairConfig, draw_pair, make_pair
from pul.pairs_device import draw_pairs_batch, exemplars_batch, make_pairs_batch
from pul.warp_device import crop_and_resize_batch, warp_batch

pytestmark = pytest.mark.usefixtures("one_thread")

N = 12


def sources(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """N x side x side x 3 colour noise, brighter in the top-left quarter (so the mean
    padding colour differs per channel from a plain 127.5)."""
    images = rng.integers(0, 200, (n, side, side, 3), dtype=np.uint8)
    images[:, : side // 4, : side // 4] += 55
    return images


def boxes(n: int, centre: float, rng: np.random.Generator, big: tuple[int, float]) -> np.ndarray:
    """N x 4 (x, y, w, h) near the crop's centre; box big[0] is big[1] wide (its context
    square then reaches past the source crop, so padding shows)."""
    c = centre + rng.uniform(-6, 6, (n, 2))
    wh = rng.uniform(16, 110, (n, 2))
    wh[big[0]] = big[1]
    return np.concatenate([c - wh / 2, wh], axis=1)


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def stored_pairs():
    """N pairs as shards/pairs.py stores them: z.jpg 255^2, x.jpg 384^2, boxes in crop pixels."""
    rng = np.random.default_rng(0)
    z, x = sources(N, 255, rng), sources(N, 384, rng)
    return z, boxes(N, 127.5, rng, (0, 230.0)), x, boxes(N, 192.0, rng, (1, 260.0))


def test_same_draw_gives_make_pairs_crops_and_offsets(stored_pairs):
    z, z_boxes, x, x_boxes = stored_pairs
    cfg = PairConfig(gray_prob=0.5, max_shift=32)
    draw = draw_pairs_batch(N, cfg, "cpu", torch.Generator().manual_seed(1))
    assert 0 < int(draw.gray.sum()) < N  # both kinds of pair are compared
    zt, xt, offsets = make_pairs_batch(
        chw(z), torch.from_numpy(z_boxes), chw(x), torch.from_numpy(x_boxes), cfg, draw=draw
    )
    assert zt.shape == (N, 3, 127, 127) and xt.shape == (N, 3, 255, 255)
    made = [
        make_pair(z[i], z_boxes[i], x[i], x_boxes[i], cfg, None, draw.pair(i)) for i in range(N)
    ]
    # Measured: mean |difference| 0.0006 (z) and 0.0009 (x) gray levels, max 1 (OpenCV's
    # uint8 warp samples on a 1/32 pixel grid with fixed-point weights; this one is float).
    for side, ref in ((zt, [m[0] for m in made]), (xt, [m[1] for m in made])):
        diff = np.abs(hwc(side) - np.stack(ref).astype(np.float32))
        assert diff.mean() < 0.01 and diff.max() <= 1, (diff.mean(), diff.max())
    np.testing.assert_array_equal(offsets.numpy(), np.stack([m[2] for m in made]))
    gray = (hwc(xt)[..., 0] == hwc(xt)[..., 2]).all(axis=(1, 2))
    np.testing.assert_array_equal(gray, draw.gray.numpy())
    # a generator draws with draw_pairs_batch: the same seed, the same pairs
    again = make_pairs_batch(
        chw(z), torch.from_numpy(z_boxes), chw(x), torch.from_numpy(x_boxes), cfg,
        torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(again, (zt, xt, offsets), strict=True))


def test_exemplars_are_tcs_untouched_templates(stored_pairs):
    z, z_boxes, _, _ = stored_pairs
    out = hwc(exemplars_batch(chw(z), torch.from_numpy(z_boxes), 127, 0.5))
    ref = np.stack(
        [crop_and_resize(im, box_center(b), context_size(b[2], b[3], 0.5), 127)
         for im, b in zip(z, z_boxes, strict=True)]
    )  # fmt: skip
    diff = np.abs(out - ref)
    assert diff.mean() < 0.01 and diff.max() <= 1, (diff.mean(), diff.max())
    # box 0's context square (~340 px) overflows z.jpg: its corners are the rounded mean colour
    mean = np.round(z[0].reshape(-1, 3).mean(axis=0))
    np.testing.assert_array_equal(out[0, 0, 0], mean)
    assert not np.array_equal(mean, [127, 127, 127])


def test_drawn_pairs_have_make_pairs_distributions():
    # 4000 draws each: a uniform's mean and std within ~4 standard errors, shares likewise.
    cfg = PairConfig(stretch=0.1, max_shift=20, gray_prob=0.3)
    dev = draw_pairs_batch(4000, cfg, "cpu", torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    cpu = [draw_pair(rng, cfg) for _ in range(4000)]
    cpu_scale = np.array([d.scale for d in cpu])
    cpu_shift = np.stack([d.shift for d in cpu])
    cpu_gray = np.array([d.gray for d in cpu])
    scale, shift, gray = dev.scale.numpy(), dev.shift.numpy(), dev.gray.numpy()
    assert scale.min() >= 0.9 and scale.max() <= 1.1 and np.abs(shift).max() <= 20
    assert abs(scale.mean() - cpu_scale.mean()) < 0.004
    assert abs(scale.std() / cpu_scale.std() - 1) < 0.05
    np.testing.assert_allclose(shift.std(axis=0), cpu_shift.std(axis=0), rtol=0.05)
    assert np.abs(shift.mean(axis=0)).max() < 0.8
    assert abs(gray.mean() - cpu_gray.mean()) < 0.04 and abs(gray.mean() - 0.3) < 0.03


def test_warp_keeps_opencvs_pixel_centres():
    image = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    one = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(2, 2, 3)
    assert torch.allclose(warp_batch(image, one, (5, 7), "border"), image, atol=1e-4)
    # output pixel q reads input q + (2, 1): whole-pixel shifts are exact copies
    shifted = one + torch.tensor([[0.0, 0, 2], [0, 0, 1]])
    out = warp_batch(image, shifted, (3, 4), "zeros")
    assert torch.allclose(out, image[:, :, 1:4, 2:6], atol=1e-4)
    # a unit-scale crop around a pixel-edge centre is a copy too (crop_matrix's convention)
    crop = crop_and_resize_batch(image, torch.tensor([[3.5, 2.5]] * 2), torch.full((2,), 3.0), 3)
    assert torch.allclose(crop, image[:, :, 1:4, 2:5], atol=1e-4)


def test_runs_without_reading_values_back():
    # See test_device_augment: on the meta device any read of a value raises.
    meta = dict(dtype=torch.uint8, device="meta")
    z, x = torch.empty(4, 3, 255, 255, **meta), torch.empty(4, 3, 384, 384, **meta)
    z_boxes = torch.empty(4, 4, device="meta")
    zt, xt, offsets = make_pairs_batch(z, z_boxes, x, z_boxes, PairConfig())
    assert zt.shape == (4, 3, 127, 127) and xt.shape == (4, 3, 255, 255)
    assert offsets.shape == (4, 2) and offsets.device.type == "meta"
    assert exemplars_batch(z, z_boxes).shape == (4, 3, 127, 127)
