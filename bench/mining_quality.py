"""Measure: how good are the pairs stage 2 mines, against the hidden ground truth?

    .venv/bin/python bench/mining_quality.py --model work/pul/bd/model.pt \
        --bench work/sup/bench30 [--clips-per-video 2] [--clip-len 32]

Synthetic videos know where their target is. Here each seed is the true target box in a
clip's seed frame (an oracle seed: this isolates tracking + cycle/confidence gating from
the proposer), mining runs as in `pul mine`, and every kept pair's mined box is compared
with the true box at its frame: centre error in pixels, and the fraction under 8 px. The
same pairs mined without the gates show what the gating buys. Finally the `noise: auto`
estimate from the kept pairs' cycle errors is set against the true error spread.

With `--proposers random objectness motion`, mining also runs as `pul mine` does, seeds
from each proposer (no oracle), and the table shows the share of mined pairs that are on
the true target: seed box and mined box both at IoU >= 0.5 with the truth of their frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pul.boxes import iou  # noqa: E402
from pul.crops import box_center  # noqa: E402
from pul.losses import sigma_from_cycle_errors  # noqa: E402
from pul.mining import MiningConfig, mine_clip  # noqa: E402
from pul.weights import load_weights  # noqa: E402
from shards.readers import read_sources  # noqa: E402
from shards.source import iter_frames  # noqa: E402


def clips(bench: str, clip_len: int, per_video: int):
    """(frames, gt boxes) of the first `per_video` clips of every benchmark video."""
    for ref in read_sources([bench], "otb", split_cuts=False):
        frames = [frame for _, frame in iter_frames(ref)]
        for start in range(0, len(frames) - clip_len + 1, clip_len)[:per_video]:
            yield frames[start : start + clip_len], ref.gt[start : start + clip_len]


def measure(net, cfg: MiningConfig, data) -> dict:
    errors, cycle_rel, true_rel, kept = [], [], [], 0
    for n, (frames, gt) in enumerate(data):
        rng = np.random.default_rng(n)
        for pair in mine_clip(frames, net, cfg, rng, seeds=np.array([gt[0]]), seed_frame=0):
            truth = gt[pair.target_frame]
            if truth is None:
                continue
            kept += 1
            err = np.array(box_center(pair.box)) - np.array(box_center(truth))
            size = float(np.sqrt(truth[2] * truth[3]))
            errors.append(float(np.hypot(*err)))
            true_rel.extend(err / size)
            seed = pair.seed_box
            cycle_rel.append(pair.cycle_error / float(np.sqrt(seed[2] * seed[3])))
    errors = np.array(errors)
    return {
        "pairs": kept,
        "within_8px": float(np.mean(errors < 8)) if kept else float("nan"),
        "p50": float(np.percentile(errors, 50)) if kept else float("nan"),
        "p90": float(np.percentile(errors, 90)) if kept else float("nan"),
        "true_sigma_rel": float(np.std(true_rel)) if kept else float("nan"),
        # the same robust estimator the auto estimate uses: |e| ~ Rayleigh(sigma) per axis
        "true_sigma_rel_robust": float(
            np.median(np.hypot(*np.reshape(true_rel, (-1, 2)).T)) / np.sqrt(2 * np.log(2))
        )
        if kept
        else float("nan"),
        "cycle_rel": np.array(cycle_rel),
    }


def on_target(net, cfg: MiningConfig, data) -> dict:
    """Mine every clip with the proposer's own seeds; how many pairs are on the target."""
    pairs = seeds = hits = seed_hits = clips_hit = 0
    for n, (frames, gt) in enumerate(data):
        rng = np.random.default_rng(n)
        mined = mine_clip(frames, net, cfg, rng)
        seeds += len({p.seed_index for p in mined})
        hit_here = 0
        for pair in mined:
            truth_seed, truth = gt[pair.seed_frame], gt[pair.target_frame]
            if truth_seed is None or truth is None:
                continue
            seed_ok = iou(np.array(pair.seed_box), np.array(truth_seed)) >= 0.5
            seed_hits += int(seed_ok)
            hit = seed_ok and iou(np.array(pair.box), np.array(truth)) >= 0.5
            hits += int(hit)
            hit_here += int(hit)
        pairs += len(mined)
        clips_hit += int(hit_here > 0)
    return {
        "pairs": pairs,
        "on_target": hits / pairs if pairs else float("nan"),
        "seed_on_target": seed_hits / pairs if pairs else float("nan"),
        "clips_hit": clips_hit,
    }


def proposer_table(net, proposers: list[str], data) -> None:
    print(f"\n{len(data)} clips, seeds from each proposer (as `pul mine`)\n")
    print(
        "| proposer | pairs kept | on target (seed and mined box IoU >= 0.5) | seed on target "
        "| clips with a pair on target | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in proposers:
        start = time.perf_counter()
        m = on_target(net, MiningConfig(proposer=name), data)
        took = time.perf_counter() - start
        print(
            f"| {name} | {m['pairs']} | {100 * m['on_target']:.1f}% | "
            f"{100 * m['seed_on_target']:.1f}% | {m['clips_hit']} of {len(data)} | {took:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--bench", required=True, help="synthetic benchmark (OTB layout)")
    parser.add_argument("--clip-len", type=int, default=32)
    parser.add_argument("--clips-per-video", type=int, default=2)
    parser.add_argument(
        "--proposers", nargs="*", default=[], help="also mine with these proposers' own seeds"
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle-seed table")
    args = parser.parse_args()
    net = load_weights(args.model)
    data = list(clips(args.bench, args.clip_len, args.clips_per_video))
    if args.proposers:
        proposer_table(net, args.proposers, data)
    if args.no_oracle:
        return
    gated_cfg = MiningConfig()
    open_cfg = dataclasses.replace(gated_cfg, min_confidence=0.0, max_cycle_error=1e9)
    gated, ungated = measure(net, gated_cfg, data), measure(net, open_cfg, data)
    print(
        f"\n{len(data)} clips of {args.clip_len} frames, one oracle seed each, "
        f"gaps {gated_cfg.gaps}\n"
    )
    print("| mining | pairs kept | centre error < 8 px | p50 px | p90 px |")
    print("|---|---:|---:|---:|---:|")
    for name, m in (("gated (as pul mine)", gated), ("no gates", ungated)):
        print(
            f"| {name} | {m['pairs']} | {100 * m['within_8px']:.1f}% | {m['p50']:.2f} | "
            f"{m['p90']:.2f} |"
        )
    estimate = sigma_from_cycle_errors(gated["cycle_rel"], max_error_px=gated_cfg.max_cycle_error)
    print(
        f"\nnoise per axis, relative to sqrt(w h) of the target, kept pairs: "
        f"auto estimate {estimate:.4f} (from cycle errors); true error: median-based "
        f"{gated['true_sigma_rel_robust']:.4f}, standard deviation {gated['true_sigma_rel']:.4f}"
    )


if __name__ == "__main__":
    main()
