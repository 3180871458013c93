"""SiamFC tracking of N sequences at once, with the per-frame work on the device.

Each tracked sequence keeps its own state (centre, size, exemplar features, padding
colour). One step takes the next frame of any subset of the sequences and, for all of them
together: uploads the frames (one copy per frame size), cuts the N x S search crops (one
`grid_sample` per frame size, `pul.device_crops`), runs ONE backbone forward, correlates
every crop with its own sequence's exemplar in ONE grouped convolution (`XCorr` with one
group per crop), locates the peaks on the device (`pul.response_peak`) and reads back one
N x 4 tensor: one host sync per step. The new centres and sizes are computed on the host in
float64 (`pul.target_motion`: SiamFC's procedure, or SiamDW's with `procedure: siamdw`).

Bit-for-bit batch invariance on CPU: a sequence gets the same boxes tracked alone
(`SiamFCTracker`, which is this class with one sequence) as beside any others. What it
rests on, each checked in tests/pul/test_batch_tracker.py:
- crops: grid_sample treats every output sample on its own;
- backbone: PyTorch's CPU convolutions (oneDNN) give each sample the same bits at batch
  3, 6, 24 or 48 (measured, AlexNet and CIResNet-22, widths 0.25 and 1, channels first and
  last);
- correlation: one group per crop. A grouped convolution with one group per SEQUENCE and
  the scales in the batch axis (XCorr's scale-major layout) gives different bits from the
  ungrouped convolution of a lone sequence (measured: up to 2e-3), so that layout is not
  used; with a group per crop both cases run the same depthwise-style kernel;
- peak search: see `pul.response_peak` (the normalising sum is taken in two stages).
On CUDA, cuDNN may pick another algorithm for another batch size: boxes can then differ in
rare near-ties; nothing here forces deterministic algorithms.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from pul.crops import box_center, context_size, search_size
from pul.device_crops import crop_batch, frames_to_device, mean_colour
from pul.models.siamese import SiamNet
from pul.response_peak import cosine_window, locate_peaks
from pul.target_motion import Target
from pul.tracker_config import TrackerConfig


def check_box(box: Iterable[float]) -> np.ndarray:
    """An (x, y, w, h) box as float64, or ValueError when it is not one with w, h > 0."""
    box = np.asarray(list(box), dtype=np.float64)
    if box.shape != (4,) or not (box[2:] > 0).all():
        raise ValueError(f"need an (x, y, w, h) box with w, h > 0, got {box.tolist()}")
    return box


@dataclass
class TrackState:
    """One sequence being tracked: host geometry (float64) and device tensors."""

    target: Target
    """Centre, size and search scale (pul.target_motion)."""
    fill: torch.Tensor
    """1 x C: the first frame's mean colour, the padding of every crop."""
    kernels: torch.Tensor
    """S x C x hz x wz: the exemplar features, once per search scale."""
    confidence: float = field(default=float("nan"))
    """Response peak at the chosen scale in the last update (NaN before the first)."""


class BatchSiamFCTracker:
    """Tracks any number of sequences, each named by a key: `init(key, frame, box)`, then
    `update({key: frame, ...}) -> {key: box}` for whichever sequences have a next frame.

    Frames are HxWx3 uint8 BGR arrays; boxes (x, y, w, h) float64, pixel-edge coordinates.
    The net is moved to `device` and put in eval mode. `bf16` runs the backbone under CUDA
    bf16 autocast (the correlation and everything after it stay float32); off by default:
    it trades precision for speed and has not been measured here. `crops_per_pass` caps
    the crops of one backbone pass (None: all of a step's crops in one pass, what a GPU
    wants; `pul.inference.crops_per_pass` says what measured best on a CPU); the boxes
    do not depend on it.
    """

    def __init__(
        self,
        net: SiamNet,
        cfg: TrackerConfig | None = None,
        device: torch.device | str = "cpu",
        bf16: bool = False,
        crops_per_pass: int | None = None,
    ) -> None:
        self.cfg = cfg or TrackerConfig()
        if crops_per_pass is not None and crops_per_pass < 1:
            raise ValueError(f"crops_per_pass must be at least 1, got {crops_per_pass}")
        self.crops_per_pass = crops_per_pass
        self.device = torch.device(device)
        if bf16 and self.device.type != "cuda":
            raise ValueError("bf16 autocast is for CUDA devices only")
        self.bf16 = bf16
        self.net = net.to(self.device).eval()
        self.scale_factors = self.cfg.scale_factors()
        self.penalties = torch.tensor(self.cfg.penalties(), dtype=torch.float32).to(self.device)
        self.window: torch.Tensor | None = None  # made at the first update (its size is known)
        self.states: dict[Hashable, TrackState] = {}

    @torch.inference_mode()
    def init(self, key: Hashable, frame: np.ndarray, box: Iterable[float]) -> None:
        """Start (or restart) tracking sequence `key` at the (x, y, w, h) box in `frame`."""
        self.net.eval()
        box = check_box(box)
        cfg = self.cfg
        image = frames_to_device([frame], self.device)  # 1 x 3 x H x W
        fill = mean_colour(image)  # 1 x 3
        center = np.array(box_center(box))
        base_z = context_size(*box[2:], context=cfg.context)
        z = crop_batch(image, [center], [base_z], cfg.exemplar_size, fill)
        kernel = self._features(z)  # 1 x C x hz x wz
        target = Target(
            center=center,
            size=box[2:].copy(),
            base_size=box[2:].copy(),
            base_x=search_size(base_z, cfg.exemplar_size, cfg.instance_size),
        )
        self.states[key] = TrackState(
            target=target,
            fill=fill,
            kernels=kernel.repeat(cfg.scale_num, 1, 1, 1),
        )

    def drop(self, key: Hashable) -> None:
        """Forget sequence `key` (its device tensors are freed); no error if unknown."""
        self.states.pop(key, None)

    @torch.inference_mode()
    def update(self, frames: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        """One step for the sequences in `frames` (key -> next frame); their new boxes."""
        self.net.eval()
        keys = list(frames)
        if not keys:
            return {}
        # sequences whose frames share a size share one upload and one grid_sample
        groups: dict[tuple[int, ...], list[Hashable]] = {}
        for key in keys:
            groups.setdefault(frames[key].shape, []).append(key)
        order = [key for group in groups.values() for key in group]
        crops = torch.cat(
            [self._search_crops([frames[k] for k in group], group) for group in groups.values()]
        )  # N*S x 3 x 255 x 255, sequence-major
        kernels = torch.cat([self.states[k].kernels for k in order])  # N*S x C x hz x wz
        # one group per crop: the bits do not depend on N (see the module docstring)
        responses = self.net.head(kernels, self._features(crops))  # N*S x 1 x h x w
        found = self._locate(
            responses.reshape(len(order), self.cfg.scale_num, *responses.shape[2:])
        )
        found = found.cpu().numpy()  # N x 4: the one host sync of the step
        return {
            key: self._move(self.states[key], row, frames[key].shape)
            for key, row in zip(order, found, strict=True)
        }

    def track_many(
        self,
        videos: Iterable[tuple[Hashable, Iterable[np.ndarray], Iterable[float]]],
        batch: int = 8,
    ) -> Iterator[tuple[Hashable, np.ndarray, np.ndarray]]:
        """Track (key, frames, first box) videos, up to `batch` at once; yields each video's
        (key, Nx4 boxes, seconds per frame) when it ends.

        A finished video's place goes to the next one, so the steps stay full until the
        videos run out. A step's time is shared equally by the videos in it (their
        seconds per frame add up to the wall time); the first frame's time is its init's.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        pending = iter(videos)
        active: dict[Hashable, _Run] = {}
        ready: dict[Hashable, np.ndarray] = {}  # the next frame of each active video
        while True:
            while len(active) < batch and (video := next(pending, None)) is not None:
                key, frames, box = video
                if key in active:
                    raise ValueError(f"two videos are named {key!r}")
                active[key] = self._start(key, iter(frames), box)
            if not active:
                return
            ended = []
            for key, run in active.items():
                if key not in ready:
                    frame = next(run.frames, None)
                    if frame is None:
                        ended.append(key)
                    else:
                        ready[key] = frame
            if ended:  # refill before stepping, so that steps stay full
                for key in ended:
                    run = active.pop(key)
                    self.drop(key)
                    yield key, np.array(run.boxes).reshape(-1, 4), np.array(run.seconds)
                continue
            start = time.perf_counter()
            boxes = self.update(ready)
            share = (time.perf_counter() - start) / len(ready)
            ready = {}
            for key, box in boxes.items():
                active[key].boxes.append(box)
                active[key].seconds.append(share)

    # ---------------------------------------------------------------- helpers

    def _start(self, key: Hashable, frames: Iterator[np.ndarray], box: Iterable[float]) -> _Run:
        first_box = check_box(box)
        run = _Run(frames)
        frame = next(frames, None)
        if frame is None:
            return run  # no frames: ends at once with no boxes
        start = time.perf_counter()
        self.init(key, frame, first_box)
        run.boxes.append(first_box)
        run.seconds.append(time.perf_counter() - start)
        return run

    def _features(self, crops: torch.Tensor) -> torch.Tensor:
        if self.crops_per_pass is not None and len(crops) > self.crops_per_pass:
            return torch.cat([self._features(part) for part in crops.split(self.crops_per_pass)])
        if not self.bf16:
            return self.net.features(crops)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return self.net.features(crops).float()

    def _search_crops(self, frames: list[np.ndarray], keys: list[Hashable]) -> torch.Tensor:
        """The S search crops of each of these sequences (frames of one size), one call."""
        states = [self.states[k] for k in keys]
        images = frames_to_device(frames, self.device)  # B x 3 x H x W
        centers = np.repeat([s.target.center for s in states], self.cfg.scale_num, axis=0)
        sizes = np.concatenate([s.target.search_side * self.scale_factors for s in states])
        fill = torch.cat([s.fill for s in states])  # B x 3
        return crop_batch(images, centers, sizes, self.cfg.instance_size, fill)

    def _locate(self, responses: torch.Tensor) -> torch.Tensor:
        up = self.cfg.response_up * responses.shape[-1]
        if self.window is None or self.window.shape[0] != up:
            self.window = cosine_window(up, self.device)
        return locate_peaks(
            responses, self.cfg.response_up, self.penalties, self.window, self.cfg.window_influence
        )

    def _move(
        self, state: TrackState, found: np.ndarray, frame_shape: tuple[int, ...]
    ) -> np.ndarray:
        """Apply one step's (best scale, row, col, peak) to the host state; the new box."""
        best, row, col, state.confidence = int(found[0]), found[1], found[2], float(found[3])
        up = self.window.shape[0]  # side of the upsampled map
        return state.target.move((best, row, col), up, self.net.total_stride, self.cfg, frame_shape)


@dataclass
class _Run:
    """A video in `track_many`: its frame iterator and what it has produced so far."""

    frames: Iterator[np.ndarray]
    boxes: list[np.ndarray] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
