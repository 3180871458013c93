"""SiamFC's and SiamDW's ways of moving the target (`TrackerConfig.procedure`), in the shared
step (`pul.target_motion`) and through both trackers: the switch must change the boxes by
exactly what the two procedures predict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from pul.crops import context_size, search_size
from pul.models import ModelConfig, build_model
from pul.plain_tracker import PlainSiamFCTracker
from pul.target_motion import Target
from pul.tracker import SiamFCTracker, TrackerConfig, siamdw_config, tracker_config_for

FRAME = (480, 640, 3)
STRIDE = 8
UP_SIZE = 17 * 16  # a 17 x 17 response upsampled 16x


def target(size=(40.0, 20.0), scale: float = 1.0, base_size=(40.0, 20.0)) -> Target:
    return Target(
        center=np.array([300.0, 200.0]),
        size=np.array(size),
        base_size=np.array(base_size),
        base_x=510.0,  # twice the search crop: one crop pixel is two image pixels
        scale=scale,
    )


def configs(**fields) -> dict[str, TrackerConfig]:
    fc = TrackerConfig(**fields)
    return {"siamfc": fc, "siamdw": dataclasses.replace(fc, procedure="siamdw")}


def test_the_peak_moves_the_target_as_each_procedure_says():
    """Peak at column 150, row 140 of the 272 x 272 map of the largest scale (1.1897):
    siamfc measures it from 135.5 and multiplies by the scale, siamdw from 136 and not."""
    cfgs = configs(scale_step=1.1897, scale_lr=0.5)
    moves = {}
    for name, cfg in cfgs.items():
        t = target()
        box = t.move((2, 140, 150), UP_SIZE, STRIDE, cfg, FRAME)
        moves[name] = t.center - [300.0, 200.0]
        # the size is damped the same way by both: 1 - 0.5 + 0.5 * 1.1897 = 1.09485
        np.testing.assert_allclose(t.size, [40 * 1.09485, 20 * 1.09485], rtol=1e-12)
        assert t.scale == pytest.approx(1.09485, rel=1e-12)
        np.testing.assert_allclose(box[2:], t.size, rtol=0)
    # cells * (8 / 16) crop px per cell * (510 / 255) image px per crop px * scale
    np.testing.assert_allclose(moves["siamfc"], [14.5 * 1.1897, 4.5 * 1.1897], rtol=1e-12)
    np.testing.assert_allclose(moves["siamdw"], [14.0, 4.0], rtol=1e-12)


def test_siamdw_saturates_the_box_at_10_pixels_and_the_frame_not_at_the_scale_bounds():
    cfgs = configs(scale_step=1.1897, scale_lr=0.5)
    damped = 1.09485
    thin = {}
    for name, cfg in cfgs.items():
        t = target(size=(8.0, 600.0), base_size=(8.0, 600.0))
        thin[name] = t.move((1, 136, 136), UP_SIZE, STRIDE, cfg, FRAME)[2:]  # middle scale
    np.testing.assert_allclose(thin["siamfc"], [8.0, 600.0], rtol=1e-12)  # factor 1
    np.testing.assert_allclose(thin["siamdw"], [10.0, 480.0], rtol=1e-12)  # 10 px, frame h
    # near max_scale (5): siamfc's box stops at 5x the first size, siamdw's keeps growing
    # while its search region stops (lib/tracker/siamfc.py lines 124 and 126-127)
    for name, cfg in cfgs.items():
        t = target(size=(4.9 * 20, 4.9 * 10), scale=4.9, base_size=(20.0, 10.0))
        t.move((2, 136, 136), UP_SIZE, STRIDE, cfg, FRAME)
        assert t.scale == 5.0
        want = [100.0, 50.0] if name == "siamfc" else [98.0 * damped, 49.0 * damped]
        np.testing.assert_allclose(t.size, want, rtol=1e-12)


class FixedResponse(nn.Module):
    """A stand-in network whose response is the same whatever the crops: a bump at (row
    12.3, column 4.2) of the 17 x 17 map, strongest in the largest scale."""

    total_stride = STRIDE

    def __init__(self) -> None:
        super().__init__()
        ys, xs = np.mgrid[0:17, 0:17]
        bump = np.exp(-((xs - 4.2) ** 2 + (ys - 12.3) ** 2) / 2.0)
        maps = np.stack([1.0 * bump, 1.0 * bump, 2.0 * bump])[:, None].astype(np.float32)
        self.register_buffer("response", torch.from_numpy(maps))  # S x 1 x 17 x 17

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        return crops[:, :1, :1, :1]

    def head(self, kernels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.response.repeat(len(x) // len(self.response), 1, 1, 1)


@pytest.mark.parametrize("tracker_class", [SiamFCTracker, PlainSiamFCTracker])
def test_both_trackers_honour_the_procedure(tracker_class):
    """Both procedures see the same peak p (cells from the map's corner), in the 1.1897x
    crop: siamfc moves by (p - 135.5) k 1.1897, siamdw by (p - 136) k, with k image pixels
    per upsampled cell at scale 1. So siamdw's move must equal siamfc's / 1.1897 - k / 2."""
    frame = np.full(FRAME, 128, np.uint8)
    box = np.array([300.0, 220.0, 40.0, 40.0])  # centre (320, 240)
    cfgs = {"siamdw": siamdw_config()}
    cfgs["siamfc"] = dataclasses.replace(cfgs["siamdw"], procedure="siamfc")
    moved, boxes = {}, {}
    for name, cfg in cfgs.items():
        tracker = tracker_class(FixedResponse(), cfg)
        tracker.init(frame, box)
        boxes[name] = tracker.update(frame)
        moved[name] = boxes[name][:2] + boxes[name][2:] / 2 - [320.0, 240.0]
    f = cfgs["siamdw"].scale_step
    k = STRIDE / 16 * search_size(context_size(40.0, 40.0), 127, 255) / 255
    np.testing.assert_allclose(moved["siamdw"], moved["siamfc"] / f - k / 2, atol=1e-9)
    assert np.abs(moved["siamfc"] - moved["siamdw"]).min() > 2.0  # a real difference
    # the largest scale won: both boxes grew by 1 - 0.2226 + 0.2226 * 1.1897
    for name in cfgs:
        np.testing.assert_allclose(boxes[name][2:], 40.0 * (1 + 0.2226 * (f - 1)), rtol=1e-12)


@pytest.mark.parametrize("tracker_class", [SiamFCTracker, PlainSiamFCTracker])
def test_both_trackers_keep_a_siamdw_box_at_least_10_pixels(tracker_class):
    frame = np.full(FRAME, 128, np.uint8)
    cfg = siamdw_config()
    for procedure, side in (("siamdw", 10.0), ("siamfc", 8.0 * (1 + 0.2226 * 0.1897))):
        tracker = tracker_class(FixedResponse(), dataclasses.replace(cfg, procedure=procedure))
        tracker.init(frame, [300.0, 220.0, 8.0, 8.0])
        np.testing.assert_allclose(tracker.update(frame)[2:], [side, side], rtol=1e-12)


def test_the_procedure_is_validated_in_one_line():
    assert TrackerConfig().procedure == "siamfc" and siamdw_config().procedure == "siamdw"
    with pytest.raises(ValueError) as err:
        TrackerConfig(procedure="siamrpn")
    assert str(err.value) == "procedure must be one of ['siamfc', 'siamdw'], got 'siamrpn'"


@pytest.mark.parametrize(("backbone", "procedure"), [("alexnet", "siamfc"), ("resnet22", "siamdw")])
def test_a_network_tracks_with_its_own_procedure(backbone, procedure):
    """What evaluation, validation and the registered pyfunc tracker use: ResPUL (CIResNet-22)
    tracks as SiamDW does, AlexPUL as SiamFC does."""
    net = build_model(ModelConfig(backbone=backbone, width=0.25))
    cfg = tracker_config_for(net)
    assert cfg.procedure == procedure
    assert cfg == (siamdw_config() if backbone == "resnet22" else TrackerConfig())
