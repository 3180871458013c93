"""The data path alone, per CPU core: what one loader process delivers, and its limit.

A loader process of stage 3 (PairChunks) reads pair shards, checks each crop's CRC-32,
decodes both JPEG crops and stacks them into chunks of tensors; one of stage 1 (PatchChunks)
decodes a random frame per clip and cuts textured patches from it. Each runs here in this
one process with one torch thread, as in a DataLoader process, so rate x loader processes
is what the loaders can feed at most. Pure JPEG decoding (cv2.imdecode of the very same
bytes in a plain loop) is the limit: what decoding alone costs, the rest being the reader.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.bench_data import MAX_GAP
from jobs.train.damage import skip_counter
from jobs.train.pair_chunks import PairChunks
from jobs.train.patch_chunks import PatchChunks
from shards.manifest import shard_paths
from shards.pairs import CROPS, raw_samples
from shards.tario import read_members

DECODE_SAMPLES = 256
"""Pairs (or frames) whose JPEG bytes the pure-decode rate loops over."""


def pair_chunks_rate(stage, seconds: float, gap_limit: int = MAX_GAP) -> float:
    """Pairs/s one stage-3 loader process delivers (chunks of 64 pairs) under the
    curriculum's `gap_limit` (the default takes every pair of the set)."""
    cfg = stage.cfg
    limit = torch.full((1,), gap_limit, dtype=torch.int32)
    dataset = PairChunks(
        cfg.data, 0, cfg.shuffle, 64, limit, stage.sigma_px, partial(skip_counter, cfg.train)
    )
    return _rate(iter(dataset), lambda chunk: len(chunk["z"]), seconds)


def patch_chunks_rate(stage, seconds: float) -> float:
    """Patches/s one stage-1 loader process cuts (chunks of 256 patches)."""
    cfg = stage.cfg
    dataset = PatchChunks(
        cfg.data, 0, cfg.shuffle, 256, cfg.patches_per_frame, cfg.patches,
        partial(skip_counter, cfg.train),
    )  # fmt: skip
    return _rate(iter(dataset), lambda chunk: len(chunk["patches"]), seconds)


def pair_decode_rate(pairs: Path, seconds: float) -> float:
    """Pairs/s of cv2.imdecode of both crops of each pair, bytes already in memory."""
    samples = itertools.islice(
        (s for path in shard_paths(pairs) for s in raw_samples(path)), DECODE_SAMPLES
    )
    jpegs = [tuple(sample[name] for name in CROPS) for sample in samples]
    return _rate(itertools.cycle(jpegs), lambda pair: int(all(map(_decode, pair))), seconds)


def frame_decode_rate(clips: Path, seconds: float) -> float:
    """Frames/s of cv2.imdecode of clip frames, bytes already in memory."""
    members = (m for path in shard_paths(clips) for m in read_members(path))
    frames = [data for name, data in members if name.endswith(".jpg")][:DECODE_SAMPLES]
    return _rate(itertools.cycle(frames), lambda frame: int(_decode(frame)), seconds)


def _decode(data: bytes) -> bool:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


def _rate(items: Iterator, count: Callable[[object], int], seconds: float) -> float:
    """Units/s of pulling `items` (each worth `count(item)`) for `seconds`, on one thread;
    the first item (opening shards, filling the shuffle buffer) is not timed."""
    with _one_thread():
        count(next(items))
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += count(next(items))
        return done / (time.perf_counter() - start)


@contextlib.contextmanager
def _one_thread():
    """One torch thread (as in a DataLoader process) and one OpenCV thread: per core."""
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
