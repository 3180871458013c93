"""A tiny clip-shard set for the submission tests (3 synthetic videos, one clip each)."""

from __future__ import annotations

from pathlib import Path

from jobs.pack import pack
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate


def tiny_clips(folder: Path) -> Path:
    videos = folder / "videos"
    generate(SynthConfig(videos=3, frames=24, width=160, height=120, seed=3), videos, False)
    clips = folder / "clips"
    pack(
        PackConfig(sources=[str(videos)], workers=1, clip_len=24, max_side=160), clips, ["t"], False
    )
    return clips
