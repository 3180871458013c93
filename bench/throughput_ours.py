"""Our training path, end to end: the stage's own `batches` (DataLoader processes reading
and decoding the shards; pools and AHM on the device; crops and views batched on the
device, or with OpenCV on the host, as train.augment_on decides) feeding the loop body,
with the precision and layout `Compute` resolves for the device (bf16 autocast and
channels_last on CUDA).

What a step costs here is what a step of `pul train` costs, data included: the time of the
pool refills (embedding the pool, the AHM index) is spread over the steps of each pool.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench.throughput_setup import LoopBody, augment_on_device, prepared, settings, sync, timed
from jobs.train.compute import Compute
from jobs.train.config import TrainConfig
from jobs.train.loop import Loader


@dataclass(frozen=True)
class Measured:
    pairs_per_s: float
    steps: int
    seconds: float
    peak_mb: float | None
    """Most device memory allocated during the run (CUDA only), over what was allocated
    before it."""
    settings: str
    """What the steps ran with (precision, layout, compile, where the crops are cut)."""


def ours(stage, workers: int, device: torch.device, warmup: int, seconds: float) -> Measured:
    """Pairs/s of `stage` over `seconds` after `warmup` steps (a stage-1 patch with its two
    views counts as one pair)."""
    cfg = stage.cfg.train
    baseline = _reset_memory(device)
    compute = Compute.resolve(cfg, device)
    model = prepared(stage, compute)
    body = LoopBody(stage, model, compute, cfg)
    batches = stage.batches(0, model, loader(cfg, workers, device))
    try:
        timing = timed(lambda i: body(next(batches), i), warmup, seconds, device)
    finally:
        batches.close()  # ends the DataLoader processes now, not at garbage collection
    peak = None
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
    where = "device" if augment_on_device(cfg, device) else "opencv"
    return Measured(
        timing.rate(cfg.batch_size),
        timing.steps,
        timing.seconds,
        peak,
        f"{settings(compute)}, augment_on={where}",
    )


def write_profile(stage, workers: int, device: torch.device, warmup: int, out: Path) -> None:
    """torch.profiler tables of 10 steps of `stage` after `warmup`: where a step's time goes
    (the wait for the next batch is the range `data: next batch`)."""
    cfg = stage.cfg.train
    compute = Compute.resolve(cfg, device)
    model = prepared(stage, compute)
    body = LoopBody(stage, model, compute, cfg)
    batches = stage.batches(0, model, loader(cfg, workers, device))
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    try:
        for i in range(warmup):
            body(next(batches), i)
        sync(device)
        with profile(activities=activities) as prof:
            for i in range(warmup, warmup + 10):
                with record_function("data: next batch"):
                    batch = next(batches)
                with record_function("step: loss, backward, SGD"):
                    body(batch, i)
            sync(device)
    finally:
        batches.close()
    table = prof.key_averages()
    parts = [
        f"# stage 3, batch {cfg.batch_size}, pool {stage.cfg.pool}, {settings(compute)}, "
        f"augment_on_device={augment_on_device(cfg, device)}, "
        f"{workers} loader workers: 10 steps after {warmup}\n"
    ]
    if device.type == "cuda":
        parts += ["\n## by self device time\n", table.table("self_device_time_total", row_limit=40)]
    parts += ["\n## by self CPU time\n", table.table("self_cpu_time_total", row_limit=40)]
    out.write_text("\n".join(parts) + "\n")


def loader(cfg: TrainConfig, workers: int, device: torch.device) -> Loader:
    """What run_loop hands the stage."""
    return Loader(workers, cfg.prefetch, device, augment_on_device(cfg, device))


def _reset_memory(device: torch.device) -> int:
    """Free what earlier measurements left and restart the peak count; bytes still held."""
    gc.collect()
    if device.type != "cuda":
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)
