"""The plain SiamFC tracker: siamfc-pytorch's `TrackerSiamFC` procedure on the host.

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
    center_box,
    context_size,
    crop_and_resize,
    search_size,
    to_tensor,
)
from pul.models.siamese import SiamNet
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
        self.center = np.array(box_center(box))
        self.base_size = box[2:].copy()  # (w, h) of the first frame
        self.scale = 1.0  # current size / first size
        self.base_z = context_size(*self.base_size, context=self.cfg.context)
        self.base_x = search_size(self.base_z, self.cfg.exemplar_size, self.cfg.instance_size)
        self.avg_colour = average_colour(frame)
        z = crop_and_resize(
            frame, self.center, self.base_z, self.cfg.exemplar_size, self.avg_colour
        )
        self.kernel = self.net.features(to_tensor(z, self.device))  # 1xCxhzxwz

    @torch.inference_mode()
    def update(self, frame: np.ndarray) -> np.ndarray:
        """Locate the target in the next frame; returns its (x, y, w, h) box (float64)."""
        self.net.eval()
        x_side = self.base_x * self.scale
        crops = np.stack(
            [
                crop_and_resize(
                    frame, self.center, x_side * f, self.cfg.instance_size, self.avg_colour
                )
                for f in self.scale_factors
            ]
        )
        x = self.net.features(to_tensor(crops, self.device))  # Sx C x hx x wx
        responses = self.net.head(self.kernel, x)[:, 0].float().cpu().numpy()  # S x 17 x 17
        best, peak, self.confidence = self._locate(responses)
        # peak: offset from the crop centre in upsampled-response cells -> image pixels
        stride_in_crop = self.net.total_stride / self.cfg.response_up
        in_image = x_side * self.scale_factors[best] / self.cfg.instance_size
        self.center = self.center + peak * stride_in_crop * in_image
        self.center = np.clip(self.center, 0.0, [frame.shape[1], frame.shape[0]])
        lr = self.cfg.scale_lr
        self.scale *= (1.0 - lr) + lr * self.scale_factors[best]
        self.scale = float(np.clip(self.scale, self.cfg.min_scale, self.cfg.max_scale))
        return center_box(self.center, self.base_size * self.scale)

    def _locate(self, responses: np.ndarray) -> tuple[int, np.ndarray, float]:
        """Best scale, its peak's (dx, dy) from the map centre in upsampled cells, peak value."""
        up = self.cfg.response_up * responses.shape[-1]
        maps = np.stack([cv2.resize(r, (up, up), interpolation=cv2.INTER_CUBIC) for r in responses])
        peaks = maps.reshape(len(maps), -1).max(axis=1)
        best = int(np.argmax(peaks * self.penalties))
        response = maps[best] - maps[best].min()
        response /= response.sum() + 1e-16
        influence = self.cfg.window_influence
        response = (1.0 - influence) * response + influence * self._cosine_window(up)
        row, col = np.unravel_index(int(response.argmax()), response.shape)
        offset = np.array([col, row], dtype=np.float64) - (up - 1) / 2
        return best, offset, float(peaks[best])

    def _cosine_window(self, size: int) -> np.ndarray:
        if self._window is None or self._window.shape[0] != size:
            window = np.outer(np.hanning(size), np.hanning(size))
            self._window = window / window.sum()
        return self._window
