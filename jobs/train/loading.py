"""Data off the training thread: chunks of decoded samples made by DataLoader processes,
gathered into pools on the trainer's device.

Stages that mine hard negatives (BD, TC) need the current model to choose their batches, so
only the part that needs no model runs in the loader processes: reading the shards,
decoding JPEG, cutting patches. Each process yields chunks (a dict of stacked uint8 tensors
and their numbers); the trainer stacks them into a pool on its device (pinned memory,
non-blocking copies) and does everything else there, batched: embedding the pool, the AHM
batches, crops and augmentation.

An error a loader process meets (too many damaged samples, too few usable ones) travels as
a chunk `{"error": message}` and is raised again on the trainer as the same one-line error,
not as DataLoader's re-raise with a traceback folded into the message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from jobs.errors import JobError
from jobs.train.damage import SKIPPED
from shards.errors import ShardError

ERROR = "error"
"""Chunk field of an error met in a loader process (its one-line message)."""
ERRORS = {"ShardError": ShardError, "JobError": JobError}


def process_seed(seed: int) -> list[int]:
    """A seed distinct per rank and loader process (each process draws its own stream)."""
    worker = get_worker_info()
    return [seed, int(os.environ.get("RANK", 0)), worker.id if worker else 0]


def error_chunk(err: Exception) -> dict[str, Any]:
    """What a loader process yields instead of raising (see the module's docstring)."""
    return {ERROR: f"{type(err).__name__}:{err}"}


def chunks(dataset: IterableDataset, loader: Any) -> Iterator[dict[str, Any]]:
    """The chunks of `dataset`, made by `loader.workers` processes (in this one when 0)."""
    workers = loader.workers
    data = DataLoader(
        dataset,
        batch_size=None,  # the dataset yields whole chunks
        num_workers=workers,
        pin_memory=loader.pin_memory,
        prefetch_factor=loader.prefetch if workers else None,
        persistent_workers=workers > 0,
    )
    for chunk in data:
        if ERROR in chunk:
            kind, _, message = chunk[ERROR].partition(":")
            raise ERRORS.get(kind, RuntimeError)(message)
        yield chunk


def unwrapped_errors(batches: Iterator[Any]) -> Iterator[Any]:
    """`batches` with the user errors a DataLoader process raised as their own one line:
    DataLoader raises them again as `Caught ShardError in DataLoader worker process 0.
    Original Traceback ...`, whose last line is the original `...ShardError: message`."""
    try:
        yield from batches
    except tuple(ERRORS.values()) as err:
        text = str(err)
        if not text.startswith("Caught "):
            raise
        marker = f"{type(err).__name__}: "
        raise type(err)(text.rstrip().splitlines()[-1].split(marker, 1)[-1]) from None


def fill_pool(
    source: Iterator[dict[str, Any]], size: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], int]:
    """`size` samples from the next chunks, stacked on `device`, and the damaged samples the
    loader processes skipped while making them. Samples beyond `size` in the last chunk are
    dropped (a pool is a random draw; the stream is endless)."""
    parts: dict[str, list[torch.Tensor]] = {}
    count, skipped = 0, 0
    while count < size:
        chunk = next(source)
        skipped += int(chunk.pop(SKIPPED, 0))
        take = min(size - count, len(next(iter(chunk.values()))))
        for key, value in chunk.items():
            parts.setdefault(key, []).append(value[:take].to(device, non_blocking=True))
        count += take
    return {key: torch.cat(values) for key, values in parts.items()}, skipped
