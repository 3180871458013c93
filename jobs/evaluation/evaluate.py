"""The evaluation job: run trackers over a labeled benchmark, score them, plot them.

Sequences are tracked in parallel as Ray tasks (one CPU each) or in this process
(`workers=1`, also the way to use a GPU), where a model tracks `batch` sequences at once:
one network pass per frame for all of them, and bit-for-bit the boxes it gives each
sequence alone (on CPU; `pul.batch_tracker`). Results are written in the OTB text format, one
file per sequence, so any other project's published raw results can be scored beside
ours on the same plots and tables (`results_dirs`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
import torch
from tqdm import tqdm

from jobs.errors import JobError
from jobs.evaluation.report import score_results, write_report
from jobs.evaluation.results import write_results
from jobs.runtime import connect_ray
from pul.baselines import StillTracker
from pul.batch_tracker import BatchSiamFCTracker
from pul.inference import crops_per_pass, tracking_net
from pul.metrics import BenchmarkScore, as_boxes
from pul.models.siamese import SiamNet
from pul.tracker import SiamFCTracker, TrackerConfig, tracker_config_for
from pul.weights import load_weights
from shards.readers import read_sources
from shards.source import VideoRef, iter_frames

log = logging.getLogger(__name__)
STILL = "still"
"""Tracker name of the centre prior: the first box, never moved."""


@dataclass
class EvalRequest:
    benchmark: str
    """Layout of the benchmark root: otb, got10k, lasot or vot."""
    root: str
    """The benchmark folder."""
    out: str
    """Where results/, metrics.json, table.md and the plots go."""
    models: dict[str, str] = field(default_factory=dict)
    """Tracker name -> model weights file to evaluate."""
    baselines: list[str] = field(default_factory=list)
    """Reference trackers to run too: 'still' (the centre prior)."""
    results_dirs: list[str] = field(default_factory=list)
    """Folders of saved results (<dir>/<tracker>/<seq>.txt) of other trackers to score."""
    sequences: list[str] = field(default_factory=list)
    """Only these sequences (default: all)."""
    workers: int = 0
    """Sequences tracked at once: 0 one Ray task per CPU, 1 in this process."""
    device: str = "cpu"
    """Torch device for in-process tracking (cuda needs workers=1)."""
    batch: int = 8
    """Sequences a model tracks at once in this process (workers=1); 1 = one by one. The
    boxes do not depend on it; the seconds per frame are the batched step's time shared
    equally by its sequences (so FPS is the aggregate throughput)."""

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise JobError(f"batch must be at least 1, got {self.batch}")


def evaluate(req: EvalRequest) -> dict[str, BenchmarkScore]:
    refs = benchmark_sequences(req.benchmark, req.root, req.sequences)
    gt = {ref.name: as_boxes(ref.gt) for ref in refs}
    results = Path(req.out) / "results"
    trackers = {name: ("model", path) for name, path in req.models.items()}
    trackers.update({name: ("baseline", name) for name in req.baselines})
    for name, spec in trackers.items():
        _run_tracker(name, spec, refs, results, req)
    scores = score_results(results, gt, list(trackers)) if trackers else {}
    for folder in req.results_dirs:
        if not Path(folder).is_dir():
            raise JobError(f"no such results folder: {folder}")
        scores.update(score_results(folder, gt))
    if not scores:
        raise JobError("nothing to evaluate: give --model, --baseline or --results")
    write_report(scores, Path(req.out), req.benchmark, got10k=req.benchmark == "got10k")
    return scores


def benchmark_sequences(benchmark: str, root: str, names: list[str]) -> list[VideoRef]:
    if not Path(root).exists():
        raise JobError(f"benchmark root not found: {root}")
    refs = [ref for ref in read_sources([root], benchmark, split_cuts=False) if ref.gt]
    if not refs:
        raise JobError(f"{root} holds no sequence with ground truth")
    if names:
        known = {ref.name for ref in refs}
        missing = sorted(set(names) - known)
        if missing:
            raise JobError(f"no sequence {', '.join(missing)} in {root}")
        refs = [ref for ref in refs if ref.name in names]
    return refs


def _run_tracker(name: str, spec: tuple[str, str], refs, results: Path, req: EvalRequest) -> None:
    if spec[0] == "model" and not Path(spec[1]).is_file():
        raise JobError(f"model file not found: {spec[1]}")
    with tqdm(total=len(refs), desc=f"track {name}", unit="seq") as bar:
        if req.workers == 1:
            for ref, boxes, seconds in track_in_process(spec, refs, req.device, req.batch):
                write_results(results, name, ref.name, boxes, seconds)
                bar.update()
            return
        connect_ray()
        remote = ray.remote(num_cpus=1)(track_sequence)
        # one thread per task: the tasks themselves fill the CPUs
        pending = {remote.remote(spec, ref, "cpu", threads=1): ref for ref in refs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = pending.pop(ready[0])
            boxes, seconds = ray.get(ready[0])
            write_results(results, name, ref.name, boxes, seconds)
            bar.update()


def track_in_process(
    spec: tuple[str, str], refs: list[VideoRef], device: str, batch: int
) -> Iterator[tuple[VideoRef, np.ndarray, np.ndarray]]:
    """(ref, boxes, seconds per frame) of every sequence, in the order they finish.

    A model tracks `batch` sequences at once (a finished one's place goes to the next);
    a baseline, or batch=1, tracks them one by one.
    """
    if spec[0] == "baseline" or batch == 1:
        for ref in refs:
            yield ref, *track_sequence(spec, ref, device, threads=None)
        return
    net, cfg = load_model(spec[1], device)
    tracker = BatchSiamFCTracker(net, cfg, device, crops_per_pass=crops_per_pass(device, cfg))
    videos = ((i, _frames(ref), first_box(ref)) for i, ref in enumerate(refs))
    for i, boxes, seconds in tracker.track_many(videos, batch):
        yield refs[i], boxes, seconds


def make_tracker(spec: tuple[str, str], device: str):
    kind, value = spec
    if kind == "baseline":
        if value != STILL:
            raise JobError(f"unknown baseline {value!r}: expected {STILL!r}")
        return StillTracker()
    return SiamFCTracker(*load_model(value, device), device)


def load_model(path: str, device: str) -> tuple[SiamNet, TrackerConfig]:
    """The tracking copy of the model in `path` (`pul.inference.tracking_net`: batch norms
    folded, the faster memory layout) and its tracker config."""
    try:
        net = load_weights(path, device)
    except ValueError as err:  # not a model file, or one that would run code: refused
        raise JobError(str(err)) from None
    return tracking_net(net), tracker_config_for(net)


def track_sequence(spec: tuple[str, str], ref: VideoRef, device: str, threads: int | None):
    """Boxes (Nx4) and seconds per frame of one tracker on one sequence."""
    if threads:
        torch.set_num_threads(threads)
    tracker = make_tracker(spec, device)
    boxes, seconds = tracker.track(_frames(ref), first_box(ref))
    return boxes, np.asarray(seconds)


def first_box(ref: VideoRef) -> np.ndarray:
    """The sequence's box in its first frame, where tracking starts."""
    first = ref.gt[0]
    if first is None:
        raise JobError(f"sequence {ref.name} has no box in its first frame to start from")
    return np.asarray(first, dtype=np.float64)


def _frames(ref: VideoRef) -> Iterator[np.ndarray]:
    return (frame for _, frame in iter_frames(ref))
