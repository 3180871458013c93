"""Benchmark: training throughput of PUL stages 1 and 3, slim and full-width AlexNet.

    .venv/bin/python bench/train_speed.py [--steps 6] [--device cpu]

One process, the stages' real model wrappers and losses (InfoNCE for stage 1; NR loss plus
lambda x InfoNCE on template views for stage 3), SGD steps on random uint8 batches of the
right shapes: the compute cost of a training step, without data loading (measured
separately by bench/shards_read.py) and without DDP. Reported as pairs/s: stage 1 counts a
patch (two views) as a pair, stage 3 a template/search pair. Median of the timed steps
after 2 warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.train.bd import Embedder  # noqa: E402
from jobs.train.tc import TrackerWithEmbedding  # noqa: E402
from pul.contrastive import info_nce  # noqa: E402
from pul.losses import response_loss  # noqa: E402
from pul.models import ModelConfig, build_model  # noqa: E402

WARMUP = 2


def images(n: int, size: int, device: str) -> torch.Tensor:
    return torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, device=device).float()


def bd_step(model, batch: int, device: str) -> float:
    views = images(2 * batch, 127, device)
    emb = model(views)
    return info_nce(*emb.chunk(2), 0.2)


def tc_step(model, batch: int, device: str) -> float:
    z, x, views = (
        images(batch, 127, device),
        images(batch, 255, device),
        images(2 * batch, 127, device),
    )
    logits, emb = model(z, x, views)
    offsets = torch.zeros(batch, 2, device=device)
    sigma = torch.full((batch,), 6.0, device=device)
    return response_loss("nr", logits, offsets, sigma) + 0.1 * info_nce(*emb.chunk(2), 0.2)


def pairs_per_second(stage: str, width: float, batch: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    net = build_model(ModelConfig(width=width))
    model = (Embedder(net) if stage == "bd" else TrackerWithEmbedding(net)).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    step = bd_step if stage == "bd" else tc_step
    seconds = []
    for _ in range(WARMUP + steps):
        start = time.perf_counter()
        loss = step(model, batch, device)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return batch / statistics.median(seconds[WARMUP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"\ntorch {torch.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} CPU threads, median of {args.steps} steps\n"
    )
    print("| stage | AlexNet width | batch | pairs/s |")
    print("|---|---|---|---|")
    for stage, batch in (("bd", 32), ("tc", 8)):
        for width in (0.25, 1.0):
            rate = pairs_per_second(stage, width, batch, args.steps, args.device)
            label = "1 (BD)" if stage == "bd" else "3 (TC)"
            print(f"| {label} | {width} | {batch} | {rate:.1f} |")


if __name__ == "__main__":
    main()
