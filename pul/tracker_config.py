"""The SiamFC tracker's hyperparameters, named and in one place (shared by every tracker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Procedure = Literal["siamfc", "siamdw"]


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
    """Smallest size of the search region (and of the box, under procedure siamfc),
    relative to the first frame's (SiamDW's saturation)."""
    max_scale: float = 5.0
    """Largest size of the search region (and of the box, under procedure siamfc),
    relative to the first frame's (SiamDW's saturation)."""
    procedure: Procedure = "siamfc"
    """How the peak moves the target (pul/target_motion.py): 'siamfc' (siamfc-pytorch) or
    'siamdw' (SiamDW's code: the peak measured from ceil(U/2), the move not multiplied by
    the chosen scale, min_scale/max_scale bounding the search region only, each box side
    between 10 pixels and the frame's)."""

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
        if self.procedure not in get_args(Procedure):
            raise ValueError(
                f"procedure must be one of {list(get_args(Procedure))}, got {self.procedure!r}"
            )

    def scale_factors(self) -> np.ndarray:
        """The search scales, smallest first: scale_step ** (-n .. n), n = scale_num // 2."""
        n = self.scale_num // 2
        return self.scale_step ** np.arange(-n, n + 1, dtype=np.float64)

    def penalties(self) -> np.ndarray:
        """Factor on each scale's peak: scale_penalty on all but the middle one (SiamFC)."""
        middle = np.arange(self.scale_num) == self.scale_num // 2
        return np.where(middle, 1.0, self.scale_penalty)


def siamdw_config() -> TrackerConfig:
    """SiamDW's tracker for CIResNet22-FC: its procedure and its values tuned on OTB-2015
    (researchmm/SiamDW experiments/test/OTB/SiamFCRes22.yaml). The rest come from its FCConfig
    (lib/tracker/siamfc.py lines 140-155) and equal SiamFC's: 3 scales, response upsampled
    16x, crops 127 / 255, context 0.5."""
    return TrackerConfig(
        scale_step=1.1897,
        scale_penalty=0.9370,
        scale_lr=0.2226,
        window_influence=0.2897,
        procedure="siamdw",
    )
