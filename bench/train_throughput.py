"""Benchmark: end-to-end training throughput of PUL stages 3 and 1, data included.

    python bench/train_throughput.py [--device cuda] [--json OUT.json] [--profile OUT.txt]
        [--seconds 8] [--batch 64] [--batch-bd 256] [--width 1.0] [--loader-workers -1]
        [--augment-on auto] [--data-dir DIR] [--quick]

Builds its own real shards (bench/bench_data.py: synthetic videos packed into clip shards,
pairs cut around their ground truth into pair shards), then measures, in one run:

- ours (bench/throughput_ours.py): the stages' real code, `stage.batches` (DataLoader
  processes, pools on the device, AHM; crops and views batched on a CUDA device or cut by
  OpenCV on the host on a CPU, as train.augment_on=auto picks) feeding the loop body,
  with bf16 and channels_last where Compute picks them;
- the plain reference (bench/throughput_reference.py): everything in this process, pair
  by pair with OpenCV on the CPU, random batches, fp32 NCHW, batch 8 (stage 3) and the
  stage's usual 32 (stage 1), the same model and loss;
- the data path alone per core, and pure JPEG decoding of the same bytes (its limit)
  (bench/throughput_data.py);
- on CUDA, stage 3's peak device memory and pairs/s at batch 8 to 256.

Pairs/s = batch x steps / seconds over `--seconds` after warm-up steps (ours: past the
first pool, so DataLoader start-up is not counted); CUDA is synchronised before the clock
is read. Stage 1 counts a patch with its two views as one pair. Imports only torch, numpy,
OpenCV, pyyaml, tqdm, matplotlib, webdataset and this project (no Ray, no MLflow): it runs
on a bare GPU image with the webdataset wheels (bench/fetch_wheels.sh).
"""

# ruff: noqa: E402 (the repository root goes on sys.path before its imports)
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import throughput_data as data_path
from bench.bench_data import FULL, MAX_GAP, QUICK, ensure_data
from bench.throughput_ours import Measured, ours, write_profile
from bench.throughput_reference import reference
from bench.throughput_report import Row, markdown, write_json
from bench.throughput_setup import bd_stage, tc_stage
from jobs.train.config import TrainConfig, loader_workers
from jobs.train.tc import TCConfig

REFERENCE_BATCH = {"tc": 8, "bd": 32}
"""Batch of the plain reference: SiamFC's 8 pairs (stage 3); the stage's default 32 (stage 1)."""
MEMORY_BATCHES = (8, 32, 64, 128, 256)
MEMORY_POOL = 512
"""Pool of the per-batch-size runs (the stage's default): the memory differences are the
batches', not the pools'."""


def main() -> None:
    args = _with_defaults(_parser().parse_args())
    device = torch.device(args.device)
    workers = loader_workers(TrainConfig(loader_workers=args.loader_workers), 1)
    if args.data_dir:
        data = ensure_data(args.data_dir, QUICK if args.quick else FULL)
        rows = measure(args, device, workers, data)
    else:
        with tempfile.TemporaryDirectory(prefix="pul-bench-") as folder:
            data = ensure_data(Path(folder), QUICK if args.quick else FULL)
            rows = measure(args, device, workers, data)
    meta = describe(device, workers, args)
    print(f"\n{meta['device']}, torch {meta['torch']}, {meta['cpus']} CPUs, {meta['date']}\n")
    print(markdown(rows))
    if args.json:
        write_json(args.json, rows, meta)


def measure(args: argparse.Namespace, device: torch.device, workers: int, data) -> list[Row]:
    """Every row, stage 3 first: ours, then the reference, then the rest."""
    warm, refwarm, secs = args.pool_batches + 1, 2, args.seconds
    tc = tc_stage(
        data.pairs, args.batch, args.pool_batches * args.batch, args.width, args.augment_on
    )
    tc_ref = tc_stage(data.pairs, REFERENCE_BATCH["tc"], 2 * REFERENCE_BATCH["tc"], args.width)
    bd = bd_stage(
        data.clips, args.batch_bd, args.pool_batches * args.batch_bd, args.width, args.augment_on
    )
    bd_ref = bd_stage(data.clips, REFERENCE_BATCH["bd"], 2 * REFERENCE_BATCH["bd"], args.width)
    rows = []
    for name, stage, plain in (("stage3", tc, tc_ref), ("stage1", bd, bd_ref)):
        mine = ours(stage, workers, device, warm, secs)
        ref = reference(plain, device, refwarm, secs)
        rows.append(_pairs_row(name, mine, ref, stage, plain, workers))
        rows.append(Row(f"{name}_speedup", mine.pairs_per_s / ref.pairs_per_s, "x"))
    rows += data_rows(tc, bd, data, secs)
    if device.type == "cuda":
        rows += memory_rows(data, args, device, workers)
    if args.profile:
        write_profile(tc, workers, device, warm, args.profile)
    return rows


def data_rows(tc, bd, data, seconds: float) -> list[Row]:
    """The data path alone, per core, and pure decoding (at most 5 s each)."""
    seconds = min(seconds, 5.0)
    decode = data_path.pair_decode_rate(data.pairs, seconds)
    frames = data_path.frame_decode_rate(data.clips, seconds)
    pairs = data_path.pair_chunks_rate(tc, seconds)
    gap = TCConfig().gap_start
    early = data_path.pair_chunks_rate(tc, seconds, gap_limit=gap)
    patches = data_path.patch_chunks_rate(bd, seconds)
    one = "1 process, 1 thread"
    return [
        Row("stage3_data_pairs_per_s_per_core", pairs, "pairs/s", decode,
            f"PairChunks: read, CRC, decode, stack ({one}); reference: pure decode"),
        Row("stage3_data_pairs_per_s_per_core_gap_start", early, "pairs/s", pairs,
            f"the same at the first step's gap limit ({gap} of the set's 1..{MAX_GAP}); "
            "reference: all gaps"),
        Row("stage1_data_pairs_per_s_per_core", patches, "pairs/s", None,
            f"PatchChunks: read, decode a frame, cut {bd.cfg.patches_per_frame} patches "
            f"({one}); a patch is a pair"),
        Row("jpeg_decode_pairs_per_s_per_core", decode, "pairs/s", None,
            "cv2.imdecode of both crops (255^2 + 384^2), bytes in memory"),
        Row("jpeg_decode_frames_per_s_per_core", frames, "frames/s", None,
            "cv2.imdecode of clip frames (320x240), bytes in memory"),
    ]  # fmt: skip


def memory_rows(data, args, device: torch.device, workers: int) -> list[Row]:
    """Stage 3's peak device memory and pairs/s at each batch size (pool 512, short runs)."""
    rows = []
    seconds = max(1.0, args.seconds / 4)
    for batch in MEMORY_BATCHES:
        stage = tc_stage(data.pairs, batch, MEMORY_POOL, args.width, args.augment_on)
        run = ours(stage, workers, device, 3, seconds)
        note = f"pool {MEMORY_POOL}, {run.steps} steps"
        rows.append(Row(f"stage3_gpu_mem_mb_batch{batch}", run.peak_mb or 0.0, "MiB", None, note))
        rows.append(Row(f"stage3_pairs_per_s_batch{batch}", run.pairs_per_s, "pairs/s", None, note))
    return rows


def _pairs_row(name, mine: Measured, ref: Measured, stage, plain, workers: int) -> Row:
    memory = f", peak {mine.peak_mb:.0f} MiB" if mine.peak_mb is not None else ""
    note = (
        f"ours: batch {stage.cfg.train.batch_size}, pool {stage.cfg.pool}, {mine.settings}, "
        f"{workers} loader workers, {mine.steps} steps{memory}; "
        f"reference: batch {plain.cfg.train.batch_size}, {ref.settings}, {ref.steps} steps"
    )
    return Row(f"{name}_pairs_per_s", mine.pairs_per_s, "pairs/s", ref.pairs_per_s, note)


def describe(device: torch.device, workers: int, args: argparse.Namespace) -> dict:
    cuda = device.type == "cuda"
    return {
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "loader_workers": workers,
        "augment_on": args.augment_on,
        "width": args.width,
        "seconds": args.seconds,
        "quick": args.quick,
        "date": datetime.date.today().isoformat(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if cuda else "cpu")
    parser.add_argument("--seconds", type=float, help="per measurement (8; --quick 3)")
    parser.add_argument("--batch", type=int, help="ours, stage 3 (cuda 64, cpu 8)")
    parser.add_argument("--batch-bd", type=int, help="ours, stage 1 (cuda 256, cpu 32)")
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width")
    parser.add_argument("--loader-workers", type=int, default=-1, help="-1: as a run picks")
    parser.add_argument(
        "--augment-on", choices=("auto", "device", "opencv"), default="auto",
        help="where ours cuts crops and views (train.augment_on; auto: as a run picks)",
    )  # fmt: skip
    parser.add_argument("--pool-batches", type=int, help="pool = this x batch (8; --quick 4)")
    parser.add_argument("--data-dir", type=Path, help="build or reuse the shards here")
    parser.add_argument("--quick", action="store_true", help="small data, short measurements")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--profile", type=Path, help="torch.profiler tables of stage 3 here")
    return parser


def _with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """The defaults that depend on --device and --quick."""
    cuda = args.device == "cuda"
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.batch = args.batch or (64 if cuda else 8)
    args.batch_bd = args.batch_bd or (256 if cuda else 32)
    args.pool_batches = args.pool_batches or (4 if args.quick else 8)
    return args


if __name__ == "__main__":
    main()
