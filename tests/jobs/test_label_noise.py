"""Annotation noise put in on purpose (noise-robustness experiment): each pair's target
centre moves by a fixed Gaussian offset, the loss is told the combined std, and stage 3's
loader hands the moved boxes to the trainer."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from jobs.train.config import TrainConfig
from jobs.train.label_noise import noise_offset, noisy_x_box
from jobs.train.pair_chunks import PairChunks
from jobs.train.tc import TCConfig, TCStage
from pul.losses import LossConfig
from shards.pairs import X_OUT, X_SIDE
from shards.reader import SkipCounter
from tests.shards.damage_fixtures import make_pair_set, pair_record

INSTANCE = 255
CROP_PX_PER_X_PX = X_SIDE * INSTANCE / X_OUT
"""Search-crop pixels per x.jpg pixel (x.jpg spans X_SIDE search crops in X_OUT pixels)."""
STORED_X_BOX = (160.0, 160.0, 64.0, 64.0)
"""The x_box of every record of make_pair_set."""


def offset_px(record, moved) -> np.ndarray:
    """How far a box's top-left moved, in search-crop pixels."""
    return (np.array(moved[:2]) - np.array(record.x_box[:2])) * CROP_PX_PER_X_PX


def test_no_label_noise_leaves_the_stored_box():
    record = pair_record(0, 3)
    assert noisy_x_box(record, 0.0, seed=7, instance=INSTANCE) == record.x_box


def test_a_pair_keeps_its_offset_for_one_seed_and_gets_another_with_another_seed():
    record = pair_record(0, 3)
    once = noisy_x_box(record, 20.0, seed=7, instance=INSTANCE)
    again = noisy_x_box(record, 20.0, seed=7, instance=INSTANCE)
    other = noisy_x_box(record, 20.0, seed=8, instance=INSTANCE)
    assert once == again
    assert once != record.x_box
    assert np.abs(np.subtract(once[:2], other[:2])).max() > 0.01
    assert once[2:] == other[2:] == record.x_box[2:]  # only the centre moves


def test_offsets_over_many_pairs_have_the_requested_std_in_search_crop_pixels():
    std = 20.0
    base = pair_record(0, 0)
    records = [dataclasses.replace(base, seed_index=i) for i in range(2000)]
    assert len({r.key for r in records}) == 2000
    offsets = np.array([offset_px(r, noisy_x_box(r, std, 3, INSTANCE)) for r in records])
    assert offsets.shape == (2000, 2)
    for axis in range(2):
        assert offsets[:, axis].std(ddof=1) == pytest.approx(std, rel=0.05)
        assert abs(offsets[:, axis].mean()) < 1.5  # 3 x std / sqrt(2000)
    # dx and dy are independent draws, not one number twice
    assert abs(np.corrcoef(offsets.T)[0, 1]) < 0.1
    # noise_offset is the offset itself, in search-crop pixels
    first = noise_offset(records[0].key, std, 3)
    assert offsets[0] == pytest.approx(first, abs=1e-9)


@pytest.fixture
def pairs(tmp_path):
    return make_pair_set(tmp_path / "pairs")


def stage(pairs, label_noise: float, loss_noise: float = 40.0, seed: int = 3) -> TCStage:
    cfg = TCConfig(
        data=str(pairs),
        loss=LossConfig(noise=loss_noise),
        label_noise=label_noise,
        pool=32,
        train=TrainConfig(batch_size=8, seed=seed),
    )
    return TCStage(cfg)


def test_the_loss_is_told_the_stored_and_the_added_noise_in_quadrature(pairs):
    record = pair_record(0, 0)
    assert stage(pairs, label_noise=30.0).sigma_px(record) == pytest.approx(50.0)
    assert stage(pairs, label_noise=0.0).sigma_px(record) == pytest.approx(40.0)
    assert stage(pairs, label_noise=30.0, loss_noise=0.0).sigma_px(record) == pytest.approx(30.0)


def first_chunk(pairs, tc: TCStage) -> tuple[dict, list[str]]:
    """The loader's first chunk and the keys of its pairs, in order (read in-process)."""
    keys: list[str] = []

    def sigma_of(record) -> float:  # called once per pair of the chunk, in its order
        keys.append(record.key)
        return tc.sigma_px(record)

    limit = torch.tensor([64], dtype=torch.int32)
    dataset = PairChunks(
        str(pairs), 0, 4, 8, limit, sigma_of, SkipCounter, x_box_of=tc.labeled_x_box
    )
    chunk = next(iter(dataset))
    return chunk, keys


def test_the_loader_hands_out_boxes_moved_by_each_pairs_own_offset(pairs):
    noisy = stage(pairs, label_noise=30.0, seed=3)
    chunk, keys = first_chunk(pairs, noisy)
    assert chunk["x_box"].shape == (8, 4) and len(keys) == 8
    for row, key in zip(chunk["x_box"].numpy(), keys, strict=True):
        dx, dy = noise_offset(key, 30.0, 3) / CROP_PX_PER_X_PX  # x.jpg pixels
        expected = (STORED_X_BOX[0] + dx, STORED_X_BOX[1] + dy, *STORED_X_BOX[2:])
        assert row == pytest.approx(expected, abs=1e-3), key
    moved = np.abs(chunk["x_box"][:, :2].numpy() - STORED_X_BOX[0])
    assert moved.max() > 1.0  # the boxes did move (30 px std is ~20 x.jpg px)
    assert chunk["sigma"] == pytest.approx(torch.full((8,), 50.0))
    # the template side is not touched
    assert torch.equal(chunk["z_box"], torch.tensor([[95.5, 95.5, 64.0, 64.0]] * 8))


def test_without_label_noise_the_loader_hands_out_the_stored_boxes(pairs):
    chunk, keys = first_chunk(pairs, stage(pairs, label_noise=0.0))
    assert len(keys) == 8
    assert torch.equal(chunk["x_box"], torch.tensor([STORED_X_BOX] * 8))


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_a_negative_or_non_finite_label_noise_is_refused(value):
    with pytest.raises(ValueError, match="label_noise must be finite and >= 0"):
        TCConfig(label_noise=value)
