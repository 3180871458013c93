"""TC mining on a synthetic clip: kept pairs are right, and the gates remove the wrong ones.

The scene: a high-contrast block-textured square moving over fine noise (as in
test_tracker.py), beside a flat grey band. An untrained width-0.25 AlexNet (seed 0) tracks
the square within about a pixel there; the tests assert every kept pair within 4 px.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pul.boxes import iou
from pul.crops import box_center
from pul.mining import MinedPair, MiningConfig, choose_seed_frame, mine_clip
from pul.proposals import (
    nms,
    objectness,
    propose_objectness,
    propose_random,
    texture,
)
from tests.helpers import SIDE, square_scene, untrained_net

pytestmark = pytest.mark.usefixtures("one_thread")

FLAT_X = 260
"""Columns from here on are flat grey: nothing to track."""
FRAMES = 17
STILL = (150.0, 30.0, float(SIDE), float(SIDE))
"""Box of a second, still square (its right answer is itself)."""


def scene(jump_at: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """The square from (40, 110), a flat band from FLAT_X and a still look-alike at STILL;
    from `jump_at` on the square is 150 px right of and 50 px above its path (out of the
    search region; still in the noise). See tests.helpers.square_scene."""
    look_alike = (int(STILL[0]), int(STILL[1]))
    return square_scene(FRAMES, (40, 110), seed, jump_at, flat_from=FLAT_X, look_alike=look_alike)


def centre_error(pair: MinedPair, truth: np.ndarray) -> float:
    return float(np.hypot(*np.subtract(box_center(pair.box), box_center(truth))))


@pytest.fixture(scope="module")
def net():
    return untrained_net()


def test_seeds_on_the_target_give_right_pairs_and_a_flat_seed_none(net):
    frames, truth = scene()
    flat = [300.0, 80.0, 40.0, 40.0]
    seeds = np.array([truth[0], flat, STILL])
    pairs = mine_clip(frames, net, MiningConfig(), np.random.default_rng(0), seeds, seed_frame=0)
    on_target = [p for p in pairs if p.seed_index == 0]
    assert [p.gap for p in on_target] == [2, 4, 8, 16]
    assert [p.target_frame for p in on_target] == [2, 4, 8, 16]
    errors = [centre_error(p, truth[p.target_frame]) for p in on_target]
    assert max(errors) < 4.0  # measured: 0.5-0.9 px
    assert all(p.cycle_error < 0.1 * SIDE for p in on_target)
    assert all(p.confidence > 0.9 for p in on_target)
    assert on_target[0].seed_box == tuple(truth[0])
    # the flat seed is refused; the still square stays where it is
    assert not [p for p in pairs if p.seed_index == 1]
    still = [p for p in pairs if p.seed_index == 2]
    assert [p.gap for p in still] == [2, 4, 8, 16]
    assert max(centre_error(p, np.array(STILL)) for p in still) < 2.0


def test_the_cycle_check_stops_a_lost_track(net):
    frames, truth = scene(jump_at=10)
    cfg = MiningConfig(gaps=(4, 8, 16), min_confidence=0.0)  # only the cycle test is on
    pairs = mine_clip(frames, net, cfg, np.random.default_rng(0), truth[:1], seed_frame=0)
    assert [p.gap for p in pairs] == [4, 8]
    assert max(centre_error(p, truth[p.target_frame]) for p in pairs) < 4.0
    # without any test the lost track yields a pair 150 px off: the gate is what removed it
    ungated = dataclasses.replace(cfg, max_cycle_error=1e6)
    pairs = mine_clip(frames, net, ungated, np.random.default_rng(0), truth[:1], seed_frame=0)
    assert [p.gap for p in pairs] == [4, 8, 16]
    assert centre_error(pairs[-1], truth[16]) > 100.0
    assert pairs[-1].cycle_error > 0.1 * SIDE


def test_the_confidence_check_stops_a_lost_track(net):
    frames, truth = scene(jump_at=10)
    # the random net's peak ratio: ~0.95 on the square, ~0.65 on noise after the jump
    cfg = MiningConfig(gaps=(4, 8, 16), min_confidence=0.8, max_cycle_error=1e6)
    pairs = mine_clip(frames, net, cfg, np.random.default_rng(0), truth[:1], seed_frame=0)
    assert [p.gap for p in pairs] == [4, 8]
    assert min(p.confidence for p in pairs) > 0.8


def test_seed_frame_leaves_room_for_the_longest_gap():
    rng = np.random.default_rng(0)
    cfg = MiningConfig(gaps=(2, 4, 8, 16))
    frames = {choose_seed_frame(32, cfg, rng) for _ in range(300)}
    assert frames == set(range(16))
    assert {choose_seed_frame(10, cfg, rng) for _ in range(20)} == {0}


def test_random_proposals_are_inside_textured_and_apart():
    frames, _ = scene()
    frame = frames[0]
    cfg = MiningConfig(proposer="random", seeds_per_clip=8, candidates=200)
    boxes = propose_random(frame, cfg, np.random.default_rng(1))
    assert boxes.shape == (8, 4)
    height, width = frame.shape[:2]
    assert (boxes[:, :2] >= 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= width).all() and (
        boxes[:, 1] + boxes[:, 3] <= height
    ).all()
    side = np.sqrt(boxes[:, 2] * boxes[:, 3]) / min(width, height)
    assert (side >= cfg.seed_min - 1e-9).all() and (side <= cfg.seed_max + 1e-9).all()
    assert (boxes[:, 0] < FLAT_X).all()  # a box wholly in the flat band is never proposed
    assert (texture(frame, boxes) >= cfg.min_texture).all()
    overlap = iou(boxes[:, None], boxes[None]) - np.eye(len(boxes))
    assert overlap.max() <= cfg.nms_iou
    again = propose_random(frame, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(boxes, again)


def test_texture_of_flat_and_busy_regions():
    frames, truth = scene()
    frame = frames[0]
    flat, busy = [FLAT_X + 10, 10, 50, 50], [10, 10, 50, 50]
    values = texture(frame, np.array([flat, busy, truth[0]]))
    assert values[0] == 0.0 and values[1] > 50.0 and values[2] > 20.0


def test_objectness_ranks_a_square_on_flat_grey_above_flat_regions(net):
    rng = np.random.default_rng(0)
    frame = np.full((240, 320, 3), 110, np.uint8)
    blocks = rng.integers(0, 2, (8, 8, 3), dtype=np.uint8) * 255
    frame[100:140, 150:190] = np.kron(blocks, np.ones((5, 5, 1), np.uint8))
    square = [150.0, 100.0, 40.0, 40.0]
    half_off = [[170.0, 100.0, 40.0, 40.0], [150.0, 120.0, 40.0, 40.0]]
    flat = [[20.0, 20.0, 40.0, 40.0], [240.0, 160.0, 50.0, 40.0], [30.0, 170.0, 60.0, 60.0]]
    batches = []
    hook = net.backbone.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    try:
        scores = objectness(frame, np.array([square, *half_off, *flat]), net)
    finally:
        hook.remove()
    assert batches == [12]  # box and ring of all 6 boxes in one forward pass
    assert scores[0] > 1.2 * scores[1:3].max()  # measured: 0.036 vs 0.012 and 0.024
    assert scores[1:3].min() > 0.01 and np.abs(scores[3:]).max() < 1e-4
    # the proposer only offers boxes on the square: the flat rest fails the texture test
    cfg = MiningConfig(seeds_per_clip=2, candidates=128, seed_min=0.1, seed_max=0.25)
    boxes = propose_objectness(frame, net, cfg, np.random.default_rng(3))
    assert len(boxes) == 2
    assert (iou(boxes, np.array(square)) > 0.15).all()
    ranked = objectness(frame, boxes, net)
    assert ranked[0] >= ranked[1] - 1e-6


def test_nms_keeps_the_best_and_drops_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 10, 10], [50, 50, 5, 5]], float)
    keep = nms(boxes, np.array([0.5, 0.9, 0.1, 0.3]), max_iou=0.3, keep=3)
    assert keep.tolist() == [1, 3, 2]


def test_mining_config_validates():
    for bad in (
        {"gaps": (4, 2)},
        {"gaps": ()},
        {"gaps": (0, 2)},
        {"proposer": "sift"},
        {"seed_min": 0.5, "seed_max": 0.2},
        {"max_cycle_error": 0.0},
        {"seeds_per_clip": 10, "candidates": 5},
    ):
        with pytest.raises(ValueError) as err:
            MiningConfig(**bad)
        assert "\n" not in str(err.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mines_like_the_cpu(net):
    # seen on an H200: the same pairs, boxes equal to the last bit
    frames, truth = scene()
    seeds = np.array([truth[0], STILL])
    cpu = mine_clip(frames, net, MiningConfig(), np.random.default_rng(0), seeds, seed_frame=0)
    gpu = mine_clip(frames, net.cuda(), MiningConfig(), np.random.default_rng(0), seeds, 0)
    net.cpu()
    assert [(p.seed_index, p.gap) for p in gpu] == [(p.seed_index, p.gap) for p in cpu]
    assert max(np.abs(np.subtract(p.box, q.box)).max() for p, q in zip(gpu, cpu, strict=True)) < 0.5
