"""SiamFC labels, class balancing, the balanced BCE, and training-pair crops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pul.labels import balanced_weights, cell_offsets, label_maps
from pul.losses import balanced_bce
from pul.pairs import PairConfig, make_pair


def test_cell_offsets_span_the_search_crop():
    grid = cell_offsets(17, 8)
    assert grid[8, 8].tolist() == [0.0, 0.0]
    assert grid[0, 0].tolist() == [-64.0, -64.0]
    assert grid[0, 16].tolist() == [64.0, -64.0]  # (x, y): column 16 is +x


def test_label_disc_has_the_siamfc_size():
    labels = label_maps(torch.zeros(1, 2), 17, 8, 16.0)
    # cells within 16 px of the centre: 1 + 4 (8 px) + 4 (16 px) + 4 diagonals (11.3 px)
    assert labels.sum().item() == 13
    shifted = label_maps(torch.tensor([[16.0, -8.0]]), 17, 8, 16.0)[0, 0]
    assert shifted[7, 10] == 1 and shifted[8, 8] == 0  # row 7 = y -8, col 10 = x +16


def test_balanced_weights_give_each_class_half():
    labels = label_maps(torch.tensor([[0.0, 0.0], [200.0, 0.0]]), 17, 8, 16.0)
    weights = balanced_weights(labels)
    assert weights.sum(dim=(1, 2, 3)).tolist() == pytest.approx([1.0, 1.0])
    assert (weights[0] * labels[0]).sum().item() == pytest.approx(0.5)
    assert labels[1].sum() == 0  # target outside the map: all weight on negatives


def test_balanced_bce_values():
    offsets = torch.zeros(2, 2)
    assert balanced_bce(torch.zeros(2, 1, 17, 17), offsets).item() == pytest.approx(math.log(2))
    labels = label_maps(offsets, 17, 8, 16.0)
    perfect = (labels * 2 - 1) * 20
    assert balanced_bce(perfect, offsets).item() < 1e-6
    wrong = -perfect
    assert balanced_bce(wrong, offsets).item() > 19


def _square_frame(box, size=(320, 240)):
    frame = np.full((size[1], size[0], 3), 60, np.uint8)
    x, y, w, h = box
    frame[y : y + h, x : x + w] = 255
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_offset_points_at_the_target(seed):
    box = (150, 100, 30, 30)
    frame = _square_frame(box)
    cfg = PairConfig(max_shift=24, stretch=0.05, gray_prob=0.0)
    z, x, offset = make_pair(
        frame, np.array(box), frame, np.array(box), cfg, np.random.default_rng(seed)
    )
    assert z.shape == (127, 127, 3) and x.shape == (255, 255, 3)
    assert z[63, 63].tolist() == [255, 255, 255]  # the template is centred on the target
    bright = np.argwhere(x[..., 0] > 200)
    centre_yx = bright.mean(axis=0)
    found = np.array([centre_yx[1], centre_yx[0]]) + 0.5 - 127.5
    assert np.abs(found - offset).max() < 1.5
    assert np.abs(offset).max() > 1.0  # the shift really moved it off-centre
