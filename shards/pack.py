"""Packing videos into clip shards, in two resumable phases.

1. Stage: each video is encoded on its own into `OUT/.staging/NNNNN.tar` (written to a
   `.part` file, then renamed). Videos are independent, so they run in parallel, and a
   rerun skips every video already staged.
2. Assemble: the staged samples are copied, in video order, into shards of the target
   size; then the manifest is written (last, atomically) and the staging removed.

Each staged tar is a pure function of its video and the config, and assembly is a pure
function of the staged tars, so an interrupted pack resumes to byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from shards.clips import iter_clips
from shards.content_hash import file_digest, files_digests
from shards.errors import ShardError
from shards.manifest import ShardEntry, sha256_file
from shards.pack_config import PackConfig
from shards.source import VideoRef
from shards.staged_set import StagedSet
from shards.tario import add_member, open_for_writing, read_members

SHARD_PATTERN = "clips-{:06d}.tar"


@dataclass
class PackPlan:
    refs: list[VideoRef]
    shard_set: StagedSet

    @property
    def out(self) -> Path:
        return self.shard_set.out

    @property
    def plan_hash(self) -> str:
        return self.shard_set.plan_hash

    def staged(self, index: int) -> Path:
        return self.shard_set.staged(f"{index:05d}.tar")

    def pending(self) -> list[int]:
        return [i for i in range(len(self.refs)) if not self.staged(i).exists()]


@dataclass
class VideoStats:
    clips: int
    frames: int


def plan_hash(refs: list[VideoRef], cfg: PackConfig) -> str:
    """What decides the shards' bytes: the videos (not where they lie) and the config."""
    settings = {k: v for k, v in cfg.content_fields().items() if k != "sources"}
    videos = [_identity(ref) for ref in refs]
    blob = json.dumps({"config": settings, "videos": videos}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _identity(ref: VideoRef) -> list:
    """A video by its content: its bytes (file or frames), segment, labels and metadata."""
    if ref.is_video_file:
        content = file_digest(ref.path)
    else:
        blob = "\n".join(files_digests(ref.frames))
        content = hashlib.sha256(blob.encode()).hexdigest()
    return [ref.source, ref.name, ref.start, ref.stop, content, ref.gt, ref.fps, ref.licence]


def plan_for(out: Path, refs: list[VideoRef], cfg: PackConfig) -> PackPlan:
    """The pack of `refs` with `cfg` into `out` (nothing is written yet)."""
    return PackPlan(refs, StagedSet(out, plan_hash(refs, cfg), "pack"))


def stage_video(ref: VideoRef, cfg: PackConfig, target: Path) -> VideoStats:
    """Encode one video's clips into one staged tar (atomically)."""
    part = target.with_name(target.name + ".part")
    clips = frames = 0
    with open_for_writing(part) as tar:
        for sample in iter_clips(ref, cfg):
            for suffix, data in sample.files.items():
                add_member(tar, f"{sample.key}.{suffix}", data)
            clips += 1
            frames += sample.num_frames
    part.replace(target)
    return VideoStats(clips, frames)


def assemble(plan: PackPlan, cfg: PackConfig) -> tuple[list[ShardEntry], int]:
    """Copy the staged samples, in video order, into shards of about `cfg.shard_mb` MB.

    Returns the shard entries and the number of frames they hold. A pack that yields no
    clip at all can never succeed with these settings: its staging is removed, so that the
    same folder takes a corrected rerun.
    """
    for stale in list(plan.out.glob("clips-*.tar")) + list(plan.out.glob("*.part")):
        stale.unlink()
    writer = _ShardWriter(plan.out, int(cfg.shard_mb * 1e6))
    for index in range(len(plan.refs)):
        writer.add_samples(_samples(plan.staged(index)))
    entries = writer.close()
    if not entries:
        plan.shard_set.discard()
        raise ShardError(f"no clips: every video is shorter than min_clip_len={cfg.min_clip_len}")
    return entries, writer.frames


def _samples(staged: Path):
    """Group a staged tar's members by key (a sample's members are contiguous)."""
    current_key, members = None, []
    for name, data in read_members(staged):
        key = name.split(".", 1)[0]
        if key != current_key and members:
            yield members
            members = []
        current_key = key
        members.append((name, data))
    if members:
        yield members


class _ShardWriter:
    """Writes samples into numbered shards, closing each once it reaches the target size."""

    def __init__(self, folder: Path, target_bytes: int) -> None:
        self.folder, self.target_bytes = folder, target_bytes
        self.entries: list[ShardEntry] = []
        self.tar: tarfile.TarFile | None = None
        self.samples = 0
        self.frames = 0

    def add_samples(self, samples) -> None:
        for members in samples:
            if self.tar is None:
                self.tar = open_for_writing(self._part())
            for name, data in members:
                add_member(self.tar, name, data)
                self.frames += name.endswith(".jpg")
            self.samples += 1
            if self.tar.offset >= self.target_bytes:
                self._close_shard()

    def close(self) -> list[ShardEntry]:
        if self.tar is not None:
            self._close_shard()
        return self.entries

    def _part(self) -> Path:
        return self.folder / (SHARD_PATTERN.format(len(self.entries)) + ".part")

    def _close_shard(self) -> None:
        assert self.tar is not None
        self.tar.close()
        part = self._part()
        final = part.with_name(part.name.removesuffix(".part"))
        part.replace(final)
        entry = ShardEntry(final.name, self.samples, final.stat().st_size, sha256_file(final))
        self.entries.append(entry)
        self.tar, self.samples = None, 0
