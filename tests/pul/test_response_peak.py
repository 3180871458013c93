"""The peak search on the device (`pul.response_peak`) against the plain tracker's numpy one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pul.plain_tracker import PlainSiamFCTracker
from pul.response_peak import cosine_window, locate_peaks, normalised, upsample
from pul.tracker import TrackerConfig
from tests.helpers import untrained_net

UP = 16
SIZE = 17 * UP


def response_maps(rng: np.random.Generator, n: int, scales: int = 3) -> np.ndarray:
    """n x scales x 17 x 17 float32 maps: a blob somewhere plus noise, as real responses."""
    ys, xs = np.mgrid[0:17, 0:17]
    maps = np.empty((n, scales, 17, 17), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(2, 14, 2)
        for s in range(scales):
            blob = rng.uniform(0.5, 2.0) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8)
            maps[i, s] = blob + 0.3 * rng.standard_normal((17, 17))
    return maps


def test_bicubic_upsampling_is_opencvs_to_float_rounding():
    """Same kernel (a = -0.75), same half-pixel centres, same edge replication: measured
    max |difference| 5e-7 on unit-variance maps, the border rows and columns included."""
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((4, 17, 17)).astype(np.float32)
    got = upsample(torch.from_numpy(maps)[None], SIZE)[0].numpy()
    for r, g in zip(maps, got, strict=True):
        ref = cv2.resize(r, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        assert np.abs(g - ref).max() < 1e-5
        assert (
            np.abs(g[:24] - ref[:24]).max() < 1e-5
            and np.abs(g[:, -24:] - ref[:, -24:]).max() < 1e-5
        )
        assert np.unravel_index(g.argmax(), g.shape) == np.unravel_index(ref.argmax(), ref.shape)


def test_peak_search_matches_the_plain_trackers():
    cfg = TrackerConfig()
    plain = PlainSiamFCTracker(untrained_net(), cfg)
    rng = np.random.default_rng(1)
    maps = response_maps(rng, 40)
    penalties = torch.tensor(cfg.penalties(), dtype=torch.float32)
    found = locate_peaks(
        torch.from_numpy(maps), UP, penalties, cosine_window(SIZE), cfg.window_influence
    ).numpy()
    assert found.shape == (40, 4) and found.dtype == np.float64
    bests = set()
    for responses, (best, row, col, peak) in zip(maps, found, strict=True):
        ref_found, ref_size, ref_peak = plain._locate(responses)
        assert ref_size == SIZE
        np.testing.assert_array_equal([best, row, col], ref_found)
        assert peak == pytest.approx(ref_peak, rel=1e-5)
        bests.add(int(best))
    assert bests == {0, 1, 2}  # every scale won somewhere: the scale choice was exercised


def test_normalising_gives_each_map_the_same_bits_in_any_batch():
    """One float sum over a whole 272 x 272 map is split across threads when it is alone
    and not in a batch; `normalised` sums in two short stages so the batch never matters."""
    maps = torch.rand(8, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    batched = normalised(maps)
    assert batched.shape == (8, SIZE * SIZE)
    for i in range(8):
        assert torch.equal(normalised(maps[i : i + 1])[0], batched[i])
    assert float(batched.sum(dim=1).min()) == pytest.approx(1.0, abs=1e-4)
    assert float(batched.amin()) == 0.0


def test_cosine_window_is_numpys_hann_normalised():
    window = cosine_window(SIZE).numpy()
    ref = np.outer(np.hanning(SIZE), np.hanning(SIZE))
    np.testing.assert_allclose(window, ref / ref.sum(), rtol=1e-6)
    assert window.dtype == np.float32 and window.sum() == pytest.approx(1.0, abs=1e-5)
