"""Benchmark: the streaming reader against pure JPEG decoding, and packing speed.

    .venv/bin/python bench/shards_read.py [--work work/bench] [--repeats 3]

Prints a table. The reader's overhead is measured against decoding the very same JPEG
bytes in a plain loop (the limit: the reader cannot decode faster than OpenCV does), in
the same process, alternating the two, median of the repeats. Packing is timed in this
process (workers=1) and on local Ray with one task per CPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from jobs.pack import pack
from jobs.runtime import connect_ray
from shards.footage import bundled_footage
from shards.manifest import shard_paths
from shards.pack_config import PackConfig
from shards.reader import clip_stream
from shards.synth import SynthConfig, generate
from shards.tario import read_members


def decode_all(jpegs: list[bytes]) -> int:
    for data in jpegs:
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return len(jpegs)


def read_all(folder: Path) -> int:
    frames = 0
    for clip in clip_stream(folder):
        for i in range(len(clip)):
            clip.frame(i)
        frames += len(clip)
    return frames


def read_two_per_clip(folder: Path) -> int:
    streamed = 0
    for length, _, _ in clip_stream(
        folder, transform=lambda c: (len(c), c.frame(0), c.frame(len(c) // 2))
    ):
        streamed += length
    return streamed


def timed(fn, *args) -> tuple[float, int]:
    start = time.perf_counter()
    count = fn(*args)
    return time.perf_counter() - start, count


def bench_pack(sources: list[str], work: Path, workers: int) -> tuple[float, int]:
    out = work / f"pack-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = PackConfig(sources=sources, workers=workers, clip_len=16, max_side=320, shard_mb=16)
    start = time.perf_counter()
    manifest = pack(cfg, out, command=["bench"], progress=False)
    return time.perf_counter() - start, manifest.extra["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="work/bench", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.work
    synth = work / "synth"
    generate(SynthConfig(videos=16, frames=64, seed=7), synth, progress=False)
    sources = [str(bundled_footage(["bikes"])["bikes"]), str(synth)]

    rows = []
    connect_ray()
    for workers in (1, 0):
        bench_pack(sources, work, workers)  # warm-up: Ray start, page cache
        seconds, frames = bench_pack(sources, work, workers)
        label = "in process" if workers == 1 else f"Ray, {os.cpu_count()} tasks"
        rows.append((f"pack ({label})", frames / seconds, ""))

    folder = work / "pack-w1"
    jpegs = [
        data
        for path in shard_paths(folder)
        for name, data in read_members(path)
        if name.endswith(".jpg")
    ]
    pure, reader = [], []
    for _ in range(args.repeats):
        pure.append(timed(decode_all, jpegs))
        reader.append(timed(read_all, folder))
    pure_s = statistics.median(t for t, _ in pure)
    reader_s = statistics.median(t for t, _ in reader)
    frames = pure[0][1]
    assert reader[0][1] == frames, "the reader must see every frame exactly once"
    lazy_s, lazy_frames = timed(read_two_per_clip, folder)
    rows += [
        ("pure JPEG decode of the same bytes", frames / pure_s, "the limit"),
        (
            "reader, every frame decoded",
            frames / reader_s,
            f"overhead {100 * (reader_s / pure_s - 1):+.1f}%",
        ),
        ("reader, 2 frames decoded per clip", lazy_frames / lazy_s, "clip frames/s streamed"),
    ]
    print(
        f"\n{len(jpegs)} frames ({sum(map(len, jpegs)) / 1e6:.1f} MB JPEG), "
        f"median of {args.repeats}\n"
    )
    print(f"| {'what':<40} | {'frames/s':>9} | note |")
    print(f"|{'-' * 42}|{'-' * 11}|------|")
    for what, rate, note in rows:
        print(f"| {what:<40} | {rate:>9.0f} | {note} |")


if __name__ == "__main__":
    main()
