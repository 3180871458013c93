"""Benchmark: tracking speed (frames/s) of the Siamese trackers, side by side.

    python bench/track_speed.py [--frames 100] [--devices cpu cuda] [--json OUT]

Full-width SiamFC AlexNet and SiamDW CIResNet-22 (untrained weights: speed does not depend
on their values), 3 scales per frame in one forward pass, on a synthetic 640x360 video;
plus OpenCV's MIL tracker (a classic CPU tracker that needs no model file) as a reference.
The first 5 frames are warm-up and not timed. Imports only torch, numpy, OpenCV and pul,
so it runs on a bare GPU image.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pul.models import ModelConfig, build_model  # noqa: E402
from pul.tracker import SiamFCTracker, TrackerConfig, siamdw_config  # noqa: E402

WARMUP = 5


def video(frames: int, seed: int = 0) -> list[np.ndarray]:
    """A textured square drifting over noise: enough for trackers to do real work."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (360, 640, 3), np.uint8), (5, 5), 0)
    patch = rng.integers(0, 255, (48, 48, 3), np.uint8)
    out = []
    for i in range(frames):
        frame = background.copy()
        x, y = 200 + 2 * i % 300, 150 + i % 100
        frame[y : y + 48, x : x + 48] = patch
        out.append(frame)
    return out


def time_siamese(backbone: str, device: str, frames: list[np.ndarray]) -> float:
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone=backbone, width=1.0))
    cfg = siamdw_config() if backbone == "resnet22" else TrackerConfig()
    tracker = SiamFCTracker(net, cfg, device)
    tracker.init(frames[0], (200, 150, 48, 48))
    seconds = []
    for frame in frames[1:]:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        tracker.update(frame)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return 1.0 / statistics.median(seconds[WARMUP:])


def time_mil(frames: list[np.ndarray]) -> float:
    tracker = cv2.TrackerMIL.create()
    tracker.init(frames[0], (200, 150, 48, 48))
    seconds = []
    for frame in frames[1:]:
        start = time.perf_counter()
        tracker.update(frame)
        seconds.append(time.perf_counter() - start)
    return 1.0 / statistics.median(seconds[WARMUP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu (+ cuda)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    frames = video(args.frames)
    rows = []
    for device in devices:
        name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor()
        for backbone, label in (("alexnet", "SiamFC AlexNet"), ("resnet22", "SiamDW CIResNet-22")):
            rows.append((label, device, name, time_siamese(backbone, device, frames)))
    rows.append(("OpenCV MIL (classic)", "cpu", platform.processor(), time_mil(frames)))
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{args.frames} frames 640x360, median frame time\n"
    )
    print("| tracker | device | frames/s |")
    print("|---|---|---|")
    for label, device, name, fps in rows:
        print(f"| {label} | {device} ({name or 'cpu'}) | {fps:.1f} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                [dict(zip(("tracker", "device", "name", "fps"), r, strict=True)) for r in rows],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
