"""Benchmark: tracking speed (frames/s) of the device SiamFC tracker against the plain one.

    python bench/track_speed.py [--device cpu|cuda] [--frames 100] [--batch N] [--json OUT]

Full-width SiamFC AlexNet and SiamDW CIResNet-22 (untrained weights: speed does not depend
on their values), 3 scales per frame, on synthetic 640x360 videos. Rows:

- track_<net>_single_fps: one sequence, `pul.tracker.SiamFCTracker` (crops, upsampling and
  peak search on the device, one host sync per frame): 1 / median seconds per frame.
- track_<net>_batched_fps: `--batch` sequences at once (`BatchSiamFCTracker`), aggregate
  frames/s: batch / median seconds per step.
- track_opencv_mil_fps: OpenCV's MIL tracker, a classic CPU tracker needing no model file.

`reference` is the plain tracker's value in the same run (`pul.plain_tracker`, the
siamfc-pytorch procedure: cv2 crops per scale, cv2 resize per response, numpy, the net as
it was): its single fps, for the batched rows too (it tracks sequences one after another).
The device trackers track the net as the evaluation does (`pul.inference`: batch norms
folded, channels_last for AlexNet, one scale pyramid per backbone pass on a CPU);
`--ablate` adds rows with each of those choices undone, `--bf16` rows with CUDA bf16
autocast.

Timing: the trackers of one network take turns, frame by frame (each updates on frame t,
then each on t + 1, ...), so a load that comes and goes on a shared machine hits them all
alike; medians after WARMUP frames. On CUDA the clock is read after a synchronise.
Imports only torch, numpy, OpenCV and pul, so it runs on a bare GPU image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pul.batch_tracker import BatchSiamFCTracker  # noqa: E402
from pul.inference import crops_per_pass, tracking_net  # noqa: E402
from pul.models import ModelConfig, build_model  # noqa: E402
from pul.plain_tracker import PlainSiamFCTracker  # noqa: E402
from pul.tracker import SiamFCTracker, TrackerConfig, siamdw_config  # noqa: E402

WARMUP = 5
"""Frames (or batched steps) run before the clock starts."""
SIDE = 48
"""Side of the target square, in pixels."""

Unit = Callable[[int], Callable[[], int]]
"""Given t, makes frame t (of one or several videos) and returns the work to time: it
tracks them and returns how many frames that was."""


@cache
def scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Background (640x360 blurred noise) and target texture of video `seed`."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (360, 640, 3), np.uint8), (5, 5), 0)
    return background, rng.integers(0, 255, (SIDE, SIDE, 3), np.uint8)


def frame(seed: int, t: int) -> np.ndarray:
    """Frame t of video `seed`: its square drifts right and down (at most 300 x 100 px)."""
    background, patch = scene(seed)
    image = background.copy()
    x, y = start_xy(seed)
    x, y = x + 2 * t % 300, y + t % 100
    image[y : y + SIDE, x : x + SIDE] = patch
    return image


def start_xy(seed: int) -> tuple[int, int]:
    return 100 + 20 * (seed % 8), 100 + 10 * (seed % 5)


def first_box(seed: int) -> tuple[int, int, int, int]:
    return (*start_xy(seed), SIDE, SIDE)


def single(tracker) -> Unit:
    """A got10k-style tracker on video 0, started on its frame 0."""
    tracker.init(frame(0, 0), first_box(0))

    def unit(t: int) -> Callable[[], int]:
        image = frame(0, t)
        return lambda: len([tracker.update(image)])

    return unit


def batched(tracker: BatchSiamFCTracker, batch: int) -> Unit:
    """A batch tracker on videos 0 .. batch-1 at once, each started on its frame 0."""
    for seed in range(batch):
        tracker.init(seed, frame(seed, 0), first_box(seed))

    def unit(t: int) -> Callable[[], int]:
        images = {seed: frame(seed, t) for seed in range(batch)}
        return lambda: len(tracker.update(images))

    return unit


def interleaved(units: dict[str, Unit], frames: int, device: str) -> dict[str, float]:
    """Frames/s of each unit, taking turns on frames 1 .. frames-1 (see the module docs)."""
    seconds: dict[str, list[float]] = {name: [] for name in units}
    done: dict[str, int] = {}
    for t in range(1, frames):
        for name, unit in units.items():
            work = unit(t)  # the frames are made before the clock starts
            sync(device)
            start = time.perf_counter()
            done[name] = work()
            sync(device)
            seconds[name].append(time.perf_counter() - start)
    return {name: done[name] / statistics.median(s[WARMUP:]) for name, s in seconds.items()}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def network_rows(backbone: str, args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone=backbone, width=1.0))
    cfg = siamdw_config() if backbone == "resnet22" else TrackerConfig()
    device, batch = args.device, args.batch
    per_pass = crops_per_pass(device, cfg)
    fast = tracking_net(net)  # as the evaluation tracks
    units = {
        "plain": single(PlainSiamFCTracker(net, cfg, device)),
        "single": single(SiamFCTracker(fast, cfg, device)),
        "batched": batched(BatchSiamFCTracker(fast, cfg, device, False, per_pass), batch),
    }
    if args.ablate:  # each choice of pul.inference undone on its own
        for what, twin in (
            ("single_unfused", tracking_net(net, fuse_bn=False)),
            ("single_channels_last", tracking_net(net, channels_last=True)),
            ("single_channels_first", tracking_net(net, channels_last=False)),
        ):
            units[what] = single(SiamFCTracker(twin, cfg, device))
        if per_pass is not None:
            units["batched_one_pass"] = batched(BatchSiamFCTracker(fast, cfg, device), batch)
    if args.bf16:
        units["single_bf16"] = single(SiamFCTracker(fast, cfg, device, True))
        tracker16 = BatchSiamFCTracker(fast, cfg, device, True, per_pass)
        units["batched_bf16"] = batched(tracker16, batch)
    fps = interleaved(units, args.frames, device)
    plain = fps.pop("plain")
    return [row(f"track_{backbone}_{what}_fps", value, plain) for what, value in fps.items()]


def mil_fps(frames: int) -> float:
    tracker = cv2.TrackerMIL.create()
    tracker.init(frame(0, 0), first_box(0))
    seconds = []
    for t in range(1, frames):
        image = frame(0, t)
        start = time.perf_counter()
        tracker.update(image)
        seconds.append(time.perf_counter() - start)
    return 1.0 / statistics.median(seconds[WARMUP:])


def row(what: str, value: float, reference: float | None) -> dict:
    reference = None if reference is None else round(reference, 2)
    return {"what": what, "value": round(value, 2), "unit": "frames/s", "reference": reference}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if cuda else "cpu")
    parser.add_argument("--frames", type=int, default=100, help="frames per video")
    parser.add_argument(
        "--batch", type=int, default=None, help="sequences at once (default 16 on cuda, 8 on cpu)"
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="also time each choice of pul.inference undone: no batch-norm folding, the "
        "other memory layout, one backbone pass for all crops on a CPU",
    )
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (cuda)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 16 if args.device == "cuda" else 8
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if args.frames <= WARMUP + 1:
        parser.error(f"--frames must be more than {WARMUP + 1}")
    if args.bf16 and args.device != "cuda":
        parser.error("--bf16 needs --device cuda")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = network_rows("alexnet", args) + network_rows("resnet22", args)
    rows.append(row("track_opencv_mil_fps", mil_fps(args.frames), None))
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    load = (
        f", load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    )
    print(
        f"\n{args.device} ({name or 'cpu'}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {args.frames} frames 640x360, "
        f"batch {args.batch}{load}\n"
    )
    print("| what | value | unit | plain reference |")
    print("|---|---|---|---|")
    for r in rows:
        reference = "" if r["reference"] is None else f"{r['reference']:.2f}"
        print(f"| {r['what']} | {r['value']:.2f} | {r['unit']} | {reference} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
