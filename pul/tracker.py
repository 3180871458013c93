"""The SiamFC tracking procedure (siamfc-pytorch's `TrackerSiamFC.init/update`).

Per frame: crop the search region around the last centre at a few scales, correlate them
all with the exemplar features (one forward pass), upsample the responses, penalise scale
changes, blend in a cosine window (a prior against large displacements), and move to the
peak. The size follows the chosen scale, damped by `scale_lr`.

Boxes are (x, y, w, h), float, 0-based pixel-edge coordinates (see `pul.crops`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass
class TrackerConfig:
    exemplar_size: int = 127
    """Side of the exemplar crop fed to the network (pixels)."""
    instance_size: int = 255
    """Side of the search crop fed to the network (pixels)."""
    context: float = 0.5
    """Context margin around the target in the exemplar crop, as a fraction of w + h."""
    scale_num: int = 3
    """Search scales per frame (odd: the middle one keeps the size)."""
    scale_step: float = 1.0375
    """Ratio between neighbouring search scales."""
    scale_penalty: float = 0.9745
    """Factor on the responses of the scales that change the size."""
    scale_lr: float = 0.59
    """How far the size moves towards the chosen scale each frame (1 = all the way)."""
    response_up: int = 16
    """Upsampling of the response map (bicubic) before locating the peak."""
    window_influence: float = 0.176
    """Weight of the cosine window against the normalised response."""
    min_scale: float = 0.2
    """Smallest size, relative to the first frame's (SiamDW's saturation)."""
    max_scale: float = 5.0
    """Largest size, relative to the first frame's (SiamDW's saturation)."""

    def __post_init__(self) -> None:
        if not 0 < self.exemplar_size < self.instance_size:
            raise ValueError(f"need 0 < exemplar_size < instance_size, got {self.exemplar_size}")
        if self.scale_num < 1 or self.scale_num % 2 == 0:
            raise ValueError(f"scale_num must be odd and positive, got {self.scale_num}")
        if self.scale_step < 1.0:
            raise ValueError(f"scale_step must be at least 1, got {self.scale_step}")
        if not 0.0 < self.scale_penalty <= 1.0:
            raise ValueError(f"scale_penalty must be in (0, 1], got {self.scale_penalty}")
        if not 0.0 <= self.scale_lr <= 1.0:
            raise ValueError(f"scale_lr must be in [0, 1], got {self.scale_lr}")
        if self.response_up < 1:
            raise ValueError(f"response_up must be at least 1, got {self.response_up}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f"window_influence must be in [0, 1], got {self.window_influence}")
        if not 0.0 < self.min_scale <= 1.0 <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= 1 <= max_scale, got {self.min_scale}")


def siamdw_config() -> TrackerConfig:
    """SiamDW's tuned values for CIResNet22-FC on OTB-2015 (experiments/test/OTB)."""
    return TrackerConfig(
        scale_step=1.1897, scale_penalty=0.9370, scale_lr=0.2226, window_influence=0.2897
    )


class SiamFCTracker:
    """got10k-style tracker: `init(frame, box)`, then `update(frame) -> box` per frame.

    Frames are HxWx3 uint8 BGR arrays. The net is moved to `device` and put in eval mode
    (call `net.train()` afterwards to keep training it). After each update, `confidence`
    holds the response peak at the chosen scale (a logit for a net trained with BCE).
    """

    def __init__(
        self,
        net: SiamNet,
        cfg: TrackerConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cfg = cfg or TrackerConfig()
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        n = self.cfg.scale_num // 2
        self.scale_factors = self.cfg.scale_step ** np.arange(-n, n + 1, dtype=np.float64)
        # penalise every scale but the middle one (applied as a factor, as in SiamFC)
        self.penalties = np.where(np.arange(self.cfg.scale_num) == n, 1.0, self.cfg.scale_penalty)
        self._window: np.ndarray | None = None
        self.confidence = float("nan")

    @torch.inference_mode()
    def init(self, frame: np.ndarray, box: Iterable[float]) -> None:
        """Start tracking the (x, y, w, h) box in `frame`; caches the exemplar features."""
        self.net.eval()
        box = np.asarray(list(box), dtype=np.float64)
        if box.shape != (4,) or not (box[2:] > 0).all():
            raise ValueError(f"need an (x, y, w, h) box with w, h > 0, got {box.tolist()}")
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

    def track(
        self, frames: Iterable[np.ndarray], box: Iterable[float]
    ) -> tuple[np.ndarray, list[float]]:
        """Track `box` (given in the first frame) through `frames`.

        Returns the Nx4 boxes (the first is `box`) and the seconds spent on each frame
        (the first frame's time is the exemplar's).
        """
        first = np.asarray(list(box), dtype=np.float64)
        boxes: list[np.ndarray] = []
        seconds: list[float] = []
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            if i == 0:
                self.init(frame, first)
                boxes.append(first)
            else:
                boxes.append(self.update(frame))
            seconds.append(time.perf_counter() - start)
        return np.array(boxes, dtype=np.float64).reshape(-1, 4), seconds
