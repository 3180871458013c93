"""Batched tracking (`pul.batch_tracker`): N sequences at once give each one, bit for bit,
the boxes it gets tracked alone, with one backbone pass per step for all of them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pul.batch_tracker import BatchSiamFCTracker
from pul.inference import tracking_net
from pul.models import ModelConfig, build_model
from pul.tracker import SiamFCTracker, siamdw_config
from tests.helpers import centre_error, square_scene, untrained_net

LENGTHS = (12, 7, 15, 5)
"""Frames of the four test videos: different lengths, so sequences end mid-batch."""


def videos() -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Four square scenes of different lengths, seeds and starts; the last one at another
    frame size (320 x 200), so a step mixes frame sizes (two uploads, two grid_samples)."""
    out = []
    starts = ((40, 60), (100, 30), (200, 100), (60, 150))
    for i, (n, start) in enumerate(zip(LENGTHS, starts, strict=True)):
        frames, truth = square_scene(n, start=start, seed=i)
        if i == 3:
            frames = [cv2.resize(f, (320, 200), interpolation=cv2.INTER_AREA) for f in frames]
            truth = truth * [0.8, 200 / 240, 0.8, 200 / 240]
        out.append((frames, truth))
    return out


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    resnet = build_model(ModelConfig(backbone="resnet22", width=0.25))
    alexnet = untrained_net()
    # the evaluation's tracking copy: batch norms folded, channels_last (pul.inference)
    return {"alexnet": alexnet, "resnet22": resnet, "alexnet-tracking": tracking_net(alexnet)}


@pytest.mark.parametrize("backbone", ["alexnet", "resnet22", "alexnet-tracking"])
def test_batched_boxes_equal_one_at_a_time_bit_for_bit(nets, backbone):
    net = nets[backbone]
    cfg = siamdw_config() if backbone == "resnet22" else None
    data = videos()
    alone = [SiamFCTracker(net, cfg).track(frames, truth[0])[0] for frames, truth in data]
    # batch 3: the fourth video starts when the second (7 frames) ends; and the backbone
    # pass split into pyramids (as on a CPU) or not changes nothing either
    for batch, per_pass in ((3, None), (4, 3)):
        tracker = BatchSiamFCTracker(net, cfg, crops_per_pass=per_pass)
        runs = tracker.track_many(
            ((i, frames, truth[0]) for i, (frames, truth) in enumerate(data)), batch
        )
        got = {key: (boxes, seconds) for key, boxes, seconds in runs}
        assert sorted(got) == [0, 1, 2, 3]
        for i, n in enumerate(LENGTHS):
            boxes, seconds = got[i]
            assert boxes.shape == (n, 4) and seconds.shape == (n,) and (seconds > 0).all()
            assert np.array_equal(boxes, alone[i]), f"video {i}, batch {batch}"
        assert not tracker.states  # finished sequences are dropped
    # and the boxes move with the squares: equality is not won by boxes standing still
    # (measured mean centre errors: AlexNet 0.7-1.6 px per video; the untrained width-0.25
    # CIResNet-22 lags, 1-10 px, against 6-25 px for a box that never moves)
    errors = np.concatenate([centre_error(b, t) for (_, t), b in zip(data, alone, strict=True)])
    still = np.concatenate([centre_error(t[:1], t) for _, t in data])
    assert errors.mean() < 0.5 * still.mean()
    if backbone != "resnet22":
        assert errors.max() < 4.0


def test_confidences_are_bit_identical_step_by_step(nets):
    """The peak value carries the correlation's bits: a layout of the grouped convolution
    that depended on the batch (one group per sequence, scales in the batch axis: up to 2e-3
    apart, measured) would show here even where the boxes agree."""
    net = nets["alexnet"]
    data = videos()[:3]
    singles = [SiamFCTracker(net) for _ in data]
    batch = BatchSiamFCTracker(net)
    for i, ((frames, truth), single) in enumerate(zip(data, singles, strict=True)):
        single.init(frames[0], truth[0])
        batch.init(i, frames[0], truth[0])
    for t in range(1, 5):
        boxes = batch.update({i: frames[t] for i, (frames, _) in enumerate(data)})
        for i, ((frames, _), single) in enumerate(zip(data, singles, strict=True)):
            assert np.array_equal(single.update(frames[t]), boxes[i])
            assert single.confidence == batch.states[i].confidence
            assert np.isfinite(single.confidence)


def test_one_backbone_pass_per_step_for_all_sequences(nets):
    net = nets["alexnet"]
    data = videos()[:3]
    sizes: list[int] = []
    hook = net.backbone.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        runs = BatchSiamFCTracker(net).track_many(
            ((i, frames[:4], truth[0]) for i, (frames, truth) in enumerate(data)), batch=3
        )
        assert len(list(runs)) == 3
    finally:
        hook.remove()
    assert sizes == [1, 1, 1] + [9] * 3  # an exemplar each; then 3 sequences x 3 scales


def test_track_many_yields_as_sequences_end_and_checks_its_input(nets):
    net = nets["alexnet"]
    frames, truth = square_scene(6)
    tracker = BatchSiamFCTracker(net)
    runs = [("long", frames, truth[0]), ("short", frames[:3], truth[0]), ("none", [], truth[0])]
    order = [key for key, _, _ in tracker.track_many(runs, batch=3)]
    assert order == ["none", "short", "long"]
    empty = dict((k, b) for k, b, _ in tracker.track_many([("none", [], truth[0])]))
    assert empty["none"].shape == (0, 4)
    with pytest.raises(ValueError, match="batch"):
        list(tracker.track_many(runs, batch=0))
    with pytest.raises(ValueError, match="two videos"):
        list(tracker.track_many([("a", frames, truth[0]), ("a", frames, truth[0])], batch=2))
    with pytest.raises(ValueError, match="w, h > 0"):
        tracker.init("bad", frames[0], [1, 2, 0, 4])
