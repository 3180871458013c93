"""The SiamFC tracker follows a textured square through synthetic frames, untrained.

A fixed, randomly initialised AlexNet (width 0.25, seed 0) is enough: the target is a
high-contrast block texture over fine noise, so its random features stand out, and the
correlation peak sits where the exemplar's texture is. Checked for seeds 0-11 (all pass).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from pul.boxes import iou
from pul.plain_tracker import PlainSiamFCTracker
from pul.tracker import SiamFCTracker, TrackerConfig, siamdw_config
from tests.helpers import SIDE, centre_error, square_scene, untrained_net

FRAMES = 40


def scene(jump_at: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """FRAMES frames of the square moving from (40, 60); see tests.helpers.square_scene."""
    return square_scene(FRAMES, start=(40, 60), seed=seed, jump_at=jump_at)


@pytest.fixture(scope="module")
def net():
    return untrained_net()


def test_follows_a_moving_square(net):
    frames, truth = scene()
    boxes, seconds = SiamFCTracker(net).track(frames, truth[0])
    assert boxes.shape == (FRAMES, 4) and len(seconds) == FRAMES
    np.testing.assert_array_equal(boxes[0], truth[0])
    error = centre_error(boxes, truth)
    assert error.mean() < 4.0
    assert iou(boxes, truth)[-1] > 0.6
    # a box that never moves scores far worse: the test is not satisfied by standing still
    still = np.repeat(truth[:1], FRAMES, axis=0)
    assert centre_error(still, truth).mean() > 50.0
    assert iou(still, truth)[-1] == 0.0


@pytest.mark.parametrize("seed", [0, 3])
def test_device_tracker_stays_close_to_the_plain_reference(net, seed):
    """Device crops differ from OpenCV's by under a gray level, so the peaks mostly land on
    the same upsampled cell: measured for seeds 0-3, 60-100% of the frames identical and
    at most 0.36 px between the centres, the same sizes."""
    frames, truth = scene(seed=seed)
    device, _ = SiamFCTracker(net).track(frames, truth[0])
    plain, _ = PlainSiamFCTracker(net).track(frames, truth[0])
    assert centre_error(device, plain).max() < 0.5
    np.testing.assert_allclose(device[:, 2:], plain[:, 2:], rtol=1e-3)
    assert (np.abs(device - plain).max(axis=1) < 1e-9).mean() > 0.5
    assert centre_error(plain, truth).mean() < 4.0


def test_one_host_sync_per_frame(net, monkeypatch):
    """Everything between the frame's upload and the new box stays on the device: the only
    read-back is one small tensor per update (a tensor's numpy/item/tolist/bool/float/int
    are the ways a value comes back to Python)."""
    frames, truth = scene()
    tracker = SiamFCTracker(net)
    tracker.init(frames[0], truth[0])
    reads: list[str] = []
    for name in ("numpy", "item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for frame in frames[1:6]:
        tracker.update(frame)
    monkeypatch.undo()
    assert reads == ["numpy"] * 5


def test_loses_a_square_that_jumps_out_of_the_search_region(net):
    frames, truth = scene(jump_at=20)
    tracker = SiamFCTracker(net)
    tracker.init(frames[0], truth[0])
    boxes, confidence = [truth[0]], [np.nan]
    for frame in frames[1:]:
        boxes.append(tracker.update(frame))
        confidence.append(tracker.confidence)
    boxes, confidence = np.array(boxes), np.array(confidence)
    assert centre_error(boxes[:20], truth[:20]).mean() < 4.0
    assert iou(boxes, truth)[-1] < 0.1
    assert centre_error(boxes[25:], truth[25:]).min() > 100.0
    # the response peak says so: lower on background than on the target
    assert confidence[21:].max() < confidence[1:20].min()


def test_all_scales_go_through_the_backbone_in_one_pass(net):
    frames, truth = scene()
    batches = []
    hook = net.backbone.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    try:
        tracker = SiamFCTracker(net)
        tracker.init(frames[0], truth[0])
        box = tracker.update(frames[1])
    finally:
        hook.remove()
    assert batches == [1, 3]  # exemplar once; then 3 scales, one forward pass
    assert box.shape == (4,) and box.dtype == np.float64
    assert not net.training


def test_tracking_is_deterministic_and_takes_any_iterable(net):
    frames, truth = scene()
    a, _ = SiamFCTracker(net).track(frames[:8], truth[0])
    b, _ = SiamFCTracker(net).track(iter(frames[:8]), iter(truth[0].tolist()))
    np.testing.assert_array_equal(a, b)


def test_size_stays_within_the_saturation_bounds(net):
    frames, truth = scene()
    cfg = TrackerConfig(scale_step=1.5, scale_penalty=1.0, scale_lr=1.0, max_scale=1.2)
    boxes, _ = SiamFCTracker(net, cfg).track(frames[:10], truth[0])
    assert (boxes[:, 2] <= SIDE * 1.2 + 1e-9).all() and (boxes[:, 2] >= SIDE * 0.2).all()


def test_tracker_config_validates_and_has_siamfc_defaults():
    cfg = TrackerConfig()
    assert (cfg.exemplar_size, cfg.instance_size, cfg.context) == (127, 255, 0.5)
    assert (cfg.scale_num, cfg.scale_step, cfg.scale_penalty) == (3, 1.0375, 0.9745)
    assert (cfg.scale_lr, cfg.response_up, cfg.window_influence) == (0.59, 16, 0.176)
    assert siamdw_config().scale_step == pytest.approx(1.1897)
    for bad in ({"scale_num": 2}, {"scale_lr": 1.5}, {"window_influence": -0.1}, {"min_scale": 2}):
        with pytest.raises(ValueError) as err:
            dataclasses.replace(cfg, **bad)
        assert "\n" not in str(err.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tracks_like_the_cpu(net):
    frames, truth = scene()
    cpu, _ = SiamFCTracker(net, device="cpu").track(frames, truth[0])
    gpu, _ = SiamFCTracker(net, device="cuda").track(frames, truth[0])
    net.cpu()
    assert centre_error(gpu, cpu).max() < 1.0
    assert centre_error(gpu, truth).mean() < 4.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_update_synchronises_once(net):
    """CUDA's sync debug mode warns at every host sync: one per update (the read-back);
    the frame and the crop coordinates go up through pinned memory without one."""
    frames, truth = scene()
    tracker = SiamFCTracker(net, device="cuda")
    tracker.init(frames[0], truth[0])
    tracker.update(frames[1])  # warm-up: the window and the kernels' first launches
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for frame in frames[2:7]:
                tracker.update(frame)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        net.cpu()
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 5
