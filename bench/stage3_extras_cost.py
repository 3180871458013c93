"""Benchmark: what the experiments' additions cost stage 3, per pair and per step.

    .venv/bin/python bench/stage3_extras_cost.py [--batch 8] [--repeats 200]

- In the loader processes, per pair: the labeled box (`noisy_x_box`, which
  `TCStage.labeled_x_box` calls for every pair read) with label_noise 0 (every ordinary
  run: the stored box) and 20 px (a seeded draw per pair), next to decoding the pair's
  two JPEG crops, which every pair pays anyway.
- In the training step, per batch: `negative_similarity` (a B x B product of the views'
  embeddings), next to the InfoNCE term it accompanies and to a whole forward + backward
  of the width-0.25 AlexNet on the batch.
Median microseconds, one CPU thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.train.label_noise import noisy_x_box  # noqa: E402
from pul.contrastive import info_nce, negative_similarity  # noqa: E402
from pul.models import ModelConfig, build_model  # noqa: E402
from shards.pairs import decode_pair, pair_sample  # noqa: E402
from tests.shards.damage_fixtures import pair_record, textured_crops  # noqa: E402


def median_us(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = pair_record(0, 0)
    z, x = textured_crops(0)
    sample = pair_sample(record, z, x)
    loader = "loader, per pair"
    rows = [
        (loader, "labeled box, label_noise 0", lambda: noisy_x_box(record, 0.0, 0, 255)),
        (loader, "labeled box, label_noise 20", lambda: noisy_x_box(record, 20.0, 0, 255)),
        (loader, "decode the two JPEG crops", lambda: decode_pair(sample)),
    ]
    b = args.batch
    a_emb = F.normalize(torch.randn(b, 128), dim=1)
    b_emb = F.normalize(torch.randn(b, 128), dim=1)
    net = build_model(ModelConfig(width=0.25))
    zs, xs = torch.rand(b, 3, 127, 127) * 255, torch.rand(b, 3, 255, 255) * 255

    def step() -> None:
        net.zero_grad()
        net(zs, xs).mean().backward()

    rows += [
        ("step, per batch", "negative_similarity", lambda: negative_similarity(a_emb, b_emb)),
        ("step, per batch", "info_nce", lambda: info_nce(a_emb, b_emb, 0.2)),
        ("step, per batch", "forward + backward, width 0.25", step),
    ]
    print(f"| where | what | median µs (batch {b}, {args.repeats} repeats) |")
    print("|---|---|---:|")
    for where, what, fn in rows:
        repeats = args.repeats if "forward" not in what else max(5, args.repeats // 20)
        print(f"| {where} | {what} | {median_us(fn, repeats):.1f} |")


if __name__ == "__main__":
    main()
