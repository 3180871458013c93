"""The knobs of the synthetic video generator, with defaults sized for the CPU demo.

Every field changes the output, so the whole config is stored in `synth.json` and a
resumed run must match it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "bench")
MIN_OBJECT_PIXELS = 12
"""Smallest target size (square root of the area) that still shows its texture."""


@dataclass(frozen=True)
class SynthConfig:
    videos: int = 12
    """Number of videos (sequences) to generate."""
    frames: int = 60
    """Frames per video."""
    width: int = 320
    """Frame width in pixels."""
    height: int = 240
    """Frame height in pixels."""
    split: str = "train"
    """Photo split: 'train' (unlabeled training videos) or 'bench' (held-out benchmark)."""
    seed: int = 0
    """Master seed; video i is a pure function of (seed, split, i) and the other fields."""
    distractors_min: int = 1
    """Fewest distractor objects per video."""
    distractors_max: int = 3
    """Most distractor objects per video."""
    similar_prob: float = 0.6
    """Chance that a distractor is cut from the target's own texture (a look-alike)."""
    occlusion_prob: float = 0.5
    """Chance that an occluder crosses in front of the target once in a video."""
    object_min: float = 0.12
    """Smallest target size at the first frame (square root of its box area), as a fraction
    of the frame's shorter side."""
    object_max: float = 0.3
    """Largest target size at the first frame, as a fraction of the frame's shorter side."""
    scale_change: float = 0.2
    """Amplitude of the smooth log-scale change of each object over a video."""
    max_speed: float = 6.0
    """Fastest object motion relative to the background, in frame pixels per frame."""
    blur: bool = True
    """Motion blur along the motion direction for fast objects and fast camera pans."""
    camera_motion: bool = True
    """Pan and zoom the camera over a larger photograph; off: a fixed view."""
    illumination: bool = True
    """Smooth global gain/offset drift and a moving shading gradient."""
    jpeg_quality: int = 90
    """JPEG quality (1-100) of the written frames."""

    def __post_init__(self) -> None:
        _check(self.videos >= 1, f"videos must be >= 1, got {self.videos}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _check(self.frames >= 2, f"frames must be >= 2, got {self.frames}")
        _check(self.split in SPLITS, f"split must be one of {SPLITS}, got {self.split!r}")
        _check(
            0 <= self.distractors_min <= self.distractors_max,
            "need 0 <= distractors_min <= distractors_max, "
            f"got {self.distractors_min}, {self.distractors_max}",
        )
        _check(0.0 <= self.similar_prob <= 1.0, f"similar_prob not in [0, 1]: {self.similar_prob}")
        _check(
            0.0 <= self.occlusion_prob <= 1.0,
            f"occlusion_prob not in [0, 1]: {self.occlusion_prob}",
        )
        _check(
            0.0 < self.object_min <= self.object_max <= 0.5,
            f"need 0 < object_min <= object_max <= 0.5, got {self.object_min}, {self.object_max}",
        )
        smallest = self.object_min * min(self.width, self.height)
        _check(
            smallest >= MIN_OBJECT_PIXELS,
            f"frame {self.width}x{self.height} too small for object_min {self.object_min}: "
            f"smallest target {smallest:.1f} px < {MIN_OBJECT_PIXELS}",
        )
        _check(
            0.0 <= self.scale_change <= 0.7, f"scale_change not in [0, 0.7]: {self.scale_change}"
        )
        _check(self.max_speed >= 0.0, f"max_speed must be >= 0, got {self.max_speed}")
        _check(1 <= self.jpeg_quality <= 100, f"jpeg_quality not in [1, 100]: {self.jpeg_quality}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a frame."""
        return self.width, self.height


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
