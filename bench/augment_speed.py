"""Benchmark: per-sample image work of training, OpenCV per patch vs batched torch.

    python bench/augment_speed.py [--device cpu|cuda] [--sizes 64 256] [--json OUT]

Rows: one augmented view of 127x127 patches (stage 1, stage 3's contrastive views) with
pul.augment.augment (cv2, patch by patch) and pul.augment_device.augment_batch; and stage 3's
training pairs from stored crops (z 255^2, x 384^2) with pul.pairs.make_pair per pair and
pul.pairs_device.make_pairs_batch. The torch rows take uint8 tensors already on the device
(what a DataLoader hands over) and end when the device is done. Median of --repeats timed
runs after 2 warm-up runs. Imports only torch, numpy, OpenCV and pul: runs on a bare GPU image.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pul.augment import AugmentConfig, augment  # noqa: E402
from pul.augment_device import augment_batch  # noqa: E402
from pul.pairs import PairConfig, make_pair  # noqa: E402
from pul.pairs_device import make_pairs_batch  # noqa: E402


def median_seconds(work: Callable[[], object], device: str, repeats: int) -> float:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    seconds = []
    for i in range(repeats + 2):
        sync()
        start = time.perf_counter()
        work()
        sync()
        if i >= 2:  # warm-up: allocator, kernels' first launch
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def stored_pairs(n: int, rng: np.random.Generator):
    """n pairs as pair shards store them: crops and boxes in their pixels."""
    z = rng.integers(0, 256, (n, 255, 255, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (n, 384, 384, 3), dtype=np.uint8)
    wh = rng.uniform(30, 100, (n, 2))
    z_boxes = np.concatenate([127.5 - wh / 2, wh], axis=1)
    x_boxes = np.concatenate([192.0 - wh / 2, wh], axis=1)
    return z, z_boxes, x, x_boxes


def rows_for(n: int, device: str, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (n, 127, 127, 3), dtype=np.uint8)
    cfg, pair_cfg = AugmentConfig(), PairConfig()
    generator = torch.Generator(device=device).manual_seed(0)

    def on_device(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device).permute(0, 3, 1, 2).contiguous()

    images = on_device(patches)
    z, zb, x, xb = stored_pairs(n, rng)
    zt, xt = on_device(z), on_device(x)
    zbt = torch.from_numpy(zb).float().to(device)
    xbt = torch.from_numpy(xb).float().to(device)
    work = {
        ("augment", "cv2 per patch", "cpu"): lambda: augment(patches, rng, cfg),
        ("augment", "torch batched", device): lambda: augment_batch(images, cfg, generator),
        ("pairs", "cv2 per pair", "cpu"): lambda: [
            make_pair(z[i], zb[i], x[i], xb[i], pair_cfg, rng) for i in range(n)
        ],
        ("pairs", "torch batched", device): lambda: make_pairs_batch(
            zt, zbt, xt, xbt, pair_cfg, generator
        ),
    }
    rows = []
    for (task, path, dev), fn in work.items():
        seconds = median_seconds(fn, dev, repeats)
        rows.append(
            {"task": task, "path": path, "device": dev, "n": n, "per_s": n / seconds,
             "ms": 1000 * seconds}
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = [row for n in args.sizes for row in rows_for(n, args.device, args.repeats)]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else ""
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} CPU threads "
        f"({platform.processor() or platform.machine()}), {name or args.device}; "
        f"median of {args.repeats}\n"
    )
    print("| task | path | device | N | per s | ms per batch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['task']} | {r['path']} | {r['device']} | {r['n']} | {r['per_s']:.0f} "
            f"| {r['ms']:.1f} |"
        )
    if args.json:
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "gpu": name}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
