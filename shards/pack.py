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
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from shards.clips import iter_clips
from shards.errors import ShardError
from shards.manifest import MANIFEST, Manifest, ShardEntry, read_manifest, sha256_file
from shards.pack_config import PackConfig
from shards.source import VideoRef
from shards.tario import add_member, open_for_writing, read_members

STAGING = ".staging"
PLAN = "plan.json"
SHARD_PATTERN = "clips-{:06d}.tar"


@dataclass
class PackPlan:
    out: Path
    refs: list[VideoRef]
    plan_hash: str

    @property
    def staging(self) -> Path:
        return self.out / STAGING

    def staged(self, index: int) -> Path:
        return self.staging / f"{index:05d}.tar"

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
    size = Path(ref.path).stat().st_size if ref.is_video_file else len(ref.frames)
    return [ref.source, ref.name, ref.start, ref.stop, size, ref.gt is not None]


def existing_set(out: Path, digest: str) -> Manifest | None:
    """The finished set in `out` if it is this very pack; an error if it is another one."""
    if not (out / MANIFEST).exists():
        return None
    manifest = read_manifest(out)
    if manifest.extra.get("plan_hash") != digest:
        made_by = " ".join(manifest.command) or "another pack"
        raise ShardError(
            f"{out} already holds a different shard set (made by: {made_by}); "
            "choose another --out or delete it"
        )
    return manifest


def start_plan(out: Path, refs: list[VideoRef], cfg: PackConfig) -> PackPlan:
    """Create or resume the staging of a pack into `out`."""
    plan = PackPlan(out, refs, plan_hash(refs, cfg))
    plan_file = plan.staging / PLAN
    if plan_file.exists():
        staged_hash = json.loads(plan_file.read_text()).get("plan_hash")
        if staged_hash != plan.plan_hash:
            raise ShardError(
                f"{out} holds an interrupted pack of different videos or settings; "
                f"delete {plan.staging} or choose another --out"
            )
    elif out.exists() and any(p.name != STAGING for p in out.iterdir()):
        raise ShardError(f"{out} is not empty and holds no shard set; choose an empty --out")
    plan.staging.mkdir(parents=True, exist_ok=True)
    for leftover in plan.staging.glob("*.part"):
        leftover.unlink()
    plan_file.write_text(json.dumps({"plan_hash": plan.plan_hash}))
    return plan


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

    Returns the shard entries and the number of frames they hold.
    """
    for stale in list(plan.out.glob("clips-*.tar")) + list(plan.out.glob("*.part")):
        stale.unlink()
    writer = _ShardWriter(plan.out, int(cfg.shard_mb * 1e6))
    for index in range(len(plan.refs)):
        writer.add_samples(_samples(plan.staged(index)))
    entries = writer.close()
    if not entries:
        raise ShardError(f"no clips: every video is shorter than min_clip_len={cfg.min_clip_len}")
    return entries, writer.frames


def finish(plan: PackPlan) -> None:
    shutil.rmtree(plan.staging, ignore_errors=True)


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
