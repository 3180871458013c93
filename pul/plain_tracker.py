"""The plain SiamFC tracker: siamfc-pytorch's `TrackerSiamFC` procedure on the host
(or SiamDW's, by `TrackerConfig.procedure`: `pul.target_motion` moves the target for both).

Per frame: cut one search crop per scale with OpenCV, send them to the network, bring the
responses back, resize each with cv2 bicubic, and locate the peak with numpy. This was the
project's tracker before the device one (`pul.tracker.SiamFCTracker`) and stays as its
reference: the benchmark (bench/track_speed.py) measures both, and the tests check that the
device tracker's boxes stay close to these.

Boxes are (x, y, w, h), float, 0-based pixel-edge coordinates (see `pul.crops`).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import torch

from pul.crops import (
    average_colour,
    box_center,
    context_size,
    crop_and_resize,
    search_size,
    to_tensor,
)
from pul.models.siamese import SiamNet
from pul.target_motion import Target
from pul.tracker import TrackLoop, check_box
from pul.tracker_config import TrackerConfig


class PlainSiamFCTracker(TrackLoop):
    """got10k-style tracker: `init(frame, box)`, then `update(frame) -> box`, all on the host
    but the network. Same interface and hyperparameters as `SiamFCTracker`."""

    def __init__(
        self,
        net: SiamNet,
        cfg: TrackerConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cfg = cfg or TrackerConfig()
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.scale_factors = self.cfg.scale_factors()
        self.penalties = self.cfg.penalties()
        self._window: np.ndarray | None = None
        self.confidence = float("nan")

    @torch.inference_mode()
    def init(self, frame: np.ndarray, box: Iterable[float]) -> None:
        """Start tracking the (x, y, w, h) box in `frame`; caches the exemplar features."""
        self.net.eval()
        box = check_box(box)
        base_z = context_size(*box[2:], context=self.cfg.context)
        self.target = Target(
            center=np.array(box_center(box)),
            size=box[2:].copy(),
            base_size=box[2:].copy(),
            base_x=search_size(base_z, self.cfg.exemplar_size, self.cfg.instance_size),
        )
        self.avg_colour = average_colour(frame)
        z = crop_and_resize(
            frame, self.target.center, base_z, self.cfg.exemplar_size, self.avg_colour
        )
        self.kernel = self.net.features(to_tensor(z, self.device))  # 1xCxhzxwz

    @torch.inference_mode()
    def update(self, frame: np.ndarray) -> np.ndarray:
        """Locate the target in the next frame; returns its (x, y, w, h) box (float64)."""
        self.net.eval()
        target = self.target
        crops = np.stack(
            [
                crop_and_resize(
                    frame,
                    target.center,
                    target.search_side * f,
                    self.cfg.instance_size,
                    self.avg_colour,
                )
                for f in self.scale_factors
            ]
        )
        x = self.net.features(to_tensor(crops, self.device))  # Sx C x hx x wx
        responses = self.net.head(self.kernel, x)[:, 0].float().cpu().numpy()  # S x 17 x 17
        peak, up, self.confidence = self._locate(responses)
        return target.move(peak, up, self.net.total_stride, self.cfg, frame.shape)

    def _locate(self, responses: np.ndarray) -> tuple[tuple[int, int, int], int, float]:
        """(best scale, peak row, peak column) in its upsampled map, that map's side, and
        the peak value."""
        up = self.cfg.response_up * responses.shape[-1]
        maps = np.stack([cv2.resize(r, (up, up), interpolation=cv2.INTER_CUBIC) for r in responses])
        peaks = maps.reshape(len(maps), -1).max(axis=1)
        best = int(np.argmax(peaks * self.penalties))
        response = maps[best] - maps[best].min()
        response /= response.sum() + 1e-16
        influence = self.cfg.window_influence
        response = (1.0 - influence) * response + influence * self._cosine_window(up)
        row, col = np.unravel_index(int(response.argmax()), response.shape)
        return (best, int(row), int(col)), up, float(peaks[best])

    def _cosine_window(self, size: int) -> np.ndarray:
        if self._window is None or self._window.shape[0] != size:
            window = np.outer(np.hanning(size), np.hanning(size))
            self._window = window / window.sum()
        return self._window
