"""How a tracker moves its target once the response peak is found: SiamFC's or SiamDW's way.

Both trackers (`pul.batch_tracker` on the device, `pul.plain_tracker` on the host) keep a
`Target` and call `Target.move`, so the two procedures cannot drift apart between them.
`TrackerConfig.procedure` picks one; `siamdw_config()` picks SiamDW's for CIResNet-22.

`siamfc` (huanglianghua/siamfc-pytorch, siamfc/siamfc.py at 3957205, lines 193-205): the
peak's offset is measured from the centre of the U x U upsampled map, (U - 1) / 2, and
turned into image pixels through the side of the crop it was found in: the search side
TIMES the chosen scale. The box is the first frame's size times the current scale; the
scale saturates at [min_scale, max_scale] (ours: siamfc-pytorch has no bound).

`siamdw` (researchmm/SiamDW, lib/tracker/siamfc.py, unchanged from 32212ec to c82b059;
`SiamFC.update` and `SiamFC.track`, the tracker of CIResNet22-FC):
- line 101: the offset is measured from ceil(U / 2), 136 for the 272 x 272 map of a 17 x 17
  response upsampled 16x, half an upsampled cell past the centre 135.5: every move is
  shifted by -0.25 search-crop pixels per axis;
- line 103: it becomes image pixels through s_x, the search side at the current scale,
  NOT multiplied by the chosen scale (a move found in the 1.19x crop is 1/1.19 as long
  as SiamFC makes it);
- lines 53-54, 124: the search side is damped towards the chosen scale and saturates at
  0.2x and 5x the first frame's (our min_scale, max_scale);
- lines 117, 126-127, 131-132: the box is damped by the same factor but separately, and
  saturates per axis at 10 pixels and the frame's width / height, not at the scale bounds;
- lines 129-130: the centre stays inside the frame (as in our siamfc procedure).
Not reproduced: SiamDW's integer crops (the exemplar side rounded, line 45, and rounded
crop corners and pyramid sides in lib/utils/utils.py) and its result writer clipping the
box's left and top at 0 (`cxy_wh_2_rect`): cropping and result files are shared by every
tracker here, and these are sub-pixel differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pul.crops import center_box
from pul.tracker_config import TrackerConfig

SIAMDW_MIN_SIDE = 10.0
"""Smallest box side SiamDW lets a box shrink to, in image pixels (lib/tracker/siamfc.py:131)."""


@dataclass
class Target:
    """Where a tracked target is (float64 image pixels, on the host): what `move` updates."""

    center: np.ndarray
    """(cx, cy), pixel-edge coordinates."""
    size: np.ndarray
    """(w, h) of the box."""
    base_size: np.ndarray
    """(w, h) in the first frame."""
    base_x: float
    """Side of the search square at scale 1 (image pixels)."""
    scale: float = 1.0
    """Current search side / base_x (the box's size / base_size too, under siamfc)."""

    @property
    def search_side(self) -> float:
        """Side in the image of the search square at the current scale (SiamDW's s_x)."""
        return self.base_x * self.scale

    def box(self) -> np.ndarray:
        """The current (x, y, w, h) box."""
        return center_box(self.center, self.size)

    def move(
        self,
        peak: tuple[int, float, float],
        up_size: int,
        total_stride: int,
        cfg: TrackerConfig,
        frame_shape: tuple[int, ...],
    ) -> np.ndarray:
        """Apply one frame's peak (best scale index, row, column in the U x U upsampled map
        of that scale) by `cfg.procedure`; returns the new (x, y, w, h) box."""
        best, row, col = peak
        factor = cfg.scale_factors()[best]
        siamdw = cfg.procedure == "siamdw"
        centre = math.ceil(up_size / 2) if siamdw else (up_size - 1) / 2
        offset = np.array([col, row], dtype=np.float64) - centre  # upsampled cells
        crop_side = self.search_side * (1.0 if siamdw else factor)
        self.center = self.center + offset * (total_stride / cfg.response_up) * (
            crop_side / cfg.instance_size
        )
        frame_wh = np.array([frame_shape[1], frame_shape[0]], dtype=np.float64)
        self.center = np.clip(self.center, 0.0, frame_wh)
        damped = (1.0 - cfg.scale_lr) + cfg.scale_lr * factor
        self.scale = float(np.clip(self.scale * damped, cfg.min_scale, cfg.max_scale))
        if siamdw:  # SiamDW's order: the frame bound first, then the 10-pixel floor
            self.size = np.maximum(np.minimum(self.size * damped, frame_wh), SIAMDW_MIN_SIDE)
        else:
            self.size = self.base_size * self.scale
        return self.box()
