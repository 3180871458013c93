"""Benchmark: the cost of the NR loss's noise prior per training step, forward + backward.

    .venv/bin/python bench/nr_loss_cost.py [--device cpu] [--repeats 20]

Three versions of the same per-pair loss (`nr`, 17 x 17 responses), measured side by side:
`bce` (hard labels, no prior: the floor), the label-state quadrature that pul uses (exact
along x, 24 rows along y), and the old point grid (11 x 11 point samples of the density,
reimplemented here as it was, for the comparison only). Median milliseconds per call.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pul.labels import balanced_weights, cell_offsets  # noqa: E402
from pul.losses import response_loss  # noqa: E402


def old_point_grid_nr(logits, targets, sigma: float, stride=8, radius=16.0, max_side=11):
    """The grid the quadrature replaced: point samples at stride / 2, +/- 3 sigma, 11 x 11."""
    half = min(math.ceil(3 * sigma / (stride / 2)), (max_side - 1) // 2)
    steps = torch.arange(-half, half + 1, dtype=torch.float32, device=logits.device)
    spacing = max(stride / 2, 3 * sigma / max(half, 1))
    uy, ux = torch.meshgrid(steps, steps, indexing="ij")
    offsets = torch.stack([ux, uy], -1).reshape(-1, 2) * spacing  # K x 2
    prior = torch.softmax(-(offsets**2).sum(-1) / (2 * sigma**2), 0)
    size = logits.shape[-1]
    centres = targets[:, None, :] + offsets[None]  # B x K x 2
    grid = cell_offsets(size, stride, logits.device)
    dx = grid[0, :, 0] - centres[..., 0:1]
    dy = grid[:, 0, 1] - centres[..., 1:2]
    labels = ((dy[..., :, None] ** 2 + dx[..., None, :] ** 2).sqrt() <= radius).float()
    batch, k = labels.shape[:2]
    weights = balanced_weights(labels.view(-1, 1, size, size)).view(batch, k, size, size)
    per_cell = labels * F.logsigmoid(logits) + (1 - labels) * F.logsigmoid(-logits)
    g = (weights * per_cell).sum((-2, -1)).clamp(min=-1)
    return -torch.log((prior * (1 + g + 0.5 * g**2)).sum(-1)).mean()


def median_ms(fn, repeats: int, device: str) -> float:
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # warm-up calls
            times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    print(f"{'batch':>5} {'sigma':>6} {'bce ms':>8} {'states ms':>10} {'old grid ms':>12}")
    for batch in (16, 64):
        for sigma in (2.0, 8.0, 50.0):
            gen = torch.Generator().manual_seed(0)
            logits = torch.randn(batch, 1, 17, 17, generator=gen).to(args.device)
            targets = (torch.rand(batch, 2, generator=gen) * 80 - 40).to(args.device)

            def run(loss_fn, logits=logits):
                leaf = logits.clone().requires_grad_()
                loss_fn(leaf).backward()

            sigmas = torch.full((batch,), sigma, device=args.device)
            costs = {
                "bce": median_ms(
                    lambda t=targets: run(lambda x: response_loss("bce", x, t)),
                    args.repeats,
                    args.device,
                ),
                "states": median_ms(
                    lambda t=targets, s=sigmas: run(lambda x: response_loss("nr", x, t, s)),
                    args.repeats,
                    args.device,
                ),
                "old_grid": median_ms(
                    lambda t=targets, s=sigma: run(lambda x: old_point_grid_nr(x, t, s)),
                    args.repeats,
                    args.device,
                ),
            }
            print(
                f"{batch:>5} {sigma:>6.0f} {costs['bce']:>8.2f} {costs['states']:>10.2f} "
                f"{costs['old_grid']:>12.2f}"
            )
            rows.append({"batch": batch, "sigma_px": sigma, "device": args.device, **costs})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
