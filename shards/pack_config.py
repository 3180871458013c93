"""What a clip-shard set is made of: the sources and how they are cut, sized and encoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["auto", "video", "got10k", "vid", "lasot", "otb", "vot"]


@dataclass
class PackConfig:
    sources: list[str] = field(default_factory=list)
    """Video files or dataset folders to pack (the SRC arguments of `pul shards pack`)."""
    format: Layout = "auto"
    """Layout of the sources: a video file, or a GOT-10k, ILSVRC VID, LaSOT, OTB or VOT folder."""
    split_cuts: bool = True
    """Split video files at hard cuts, so that no clip spans two shots."""
    clip_len: int = 32
    """Consecutive frames per clip (one WebDataset sample)."""
    min_clip_len: int = 8
    """A video's last, shorter clip is kept when it has at least this many frames
    (a value above clip_len drops every partial clip)."""
    frame_step: int = 1
    """Keep every n-th frame (thins out high frame-rate video)."""
    max_side: int = 640
    """Frames whose longer side exceeds this are downscaled to it; 0 keeps the size."""
    jpeg_quality: int = 90
    """JPEG quality of the stored frames (1-100)."""
    shard_mb: float = 256.0
    """Target shard size in MB: a shard is closed once it holds this much."""
    workers: int = 0
    """Videos packed at once: 0 = one Ray task per CPU of the Ray cluster, 1 = in this process."""

    def __post_init__(self) -> None:
        if self.clip_len < 2:
            raise ValueError(f"clip_len must be at least 2, got {self.clip_len}")
        if self.min_clip_len < 1:
            raise ValueError(f"min_clip_len must be at least 1, got {self.min_clip_len}")
        if self.frame_step < 1:
            raise ValueError(f"frame_step must be at least 1, got {self.frame_step}")
        if self.max_side != 0 and self.max_side < 32:
            raise ValueError(f"max_side must be 0 or at least 32, got {self.max_side}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.shard_mb <= 0:
            raise ValueError(f"shard_mb must be positive, got {self.shard_mb}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (auto) or more, got {self.workers}")

    def content_fields(self) -> dict:
        """The fields that decide the bytes of the shards (not how fast they are made)."""
        return {k: v for k, v in vars(self).items() if k != "workers"}
