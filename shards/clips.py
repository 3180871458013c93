"""Cut one video into clips of consecutive frames, encoded as WebDataset samples.

A sample is `{"__key__": "<source>_<video>_clipNNNN", "0000.jpg": bytes, ..., "json": bytes}`.
The json carries the original frame indices, fps, sizes, licence, a CRC-32 per frame (so a
reader can tell a damaged frame from a valid one without decoding the rest), and the
ground-truth boxes of labeled sources, scaled to the stored frame size.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from shards.errors import ShardError
from shards.pack_config import PackConfig
from shards.source import VideoRef, iter_frames, key_part


@dataclass
class ClipSample:
    key: str
    files: dict[str, bytes]
    """Member name suffix (after `key.`) -> bytes, in the order they are written."""
    num_frames: int


def frame_name(index: int) -> str:
    return f"{index:04d}.jpg"


def clip_key(ref: VideoRef, clip_index: int) -> str:
    return f"{key_part(ref.source)}_{key_part(ref.name)}_clip{clip_index:04d}"


def resize_to_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most `max_side`; never upscale."""
    height, width = image.shape[:2]
    longer = max(height, width)
    if max_side <= 0 or longer <= max_side:
        return image, 1.0
    scale = max_side / longer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ShardError("JPEG encoding failed")
    return buffer.tobytes()


def iter_clips(ref: VideoRef, cfg: PackConfig) -> Iterator[ClipSample]:
    """Encode the ref's frames and yield its clips in order, one clip in memory at a time."""
    frames: list[tuple[int, bytes]] = []
    meta_sizes: tuple[tuple[int, int], tuple[int, int]] | None = None
    scale = 1.0
    clip_index = 0
    for position, (index, image) in enumerate(iter_frames(ref)):
        if position % cfg.frame_step:
            continue
        resized, scale = resize_to_max_side(image, cfg.max_side)
        if meta_sizes is None:
            meta_sizes = (_size(image), _size(resized))
        frames.append((index, encode_jpeg(resized, cfg.jpeg_quality)))
        if len(frames) == cfg.clip_len:
            yield _make_sample(ref, cfg, clip_index, frames, meta_sizes, scale)
            clip_index += 1
            frames = []
    if frames and len(frames) >= cfg.min_clip_len:
        yield _make_sample(ref, cfg, clip_index, frames, meta_sizes, scale)
    elif meta_sizes is None:
        raise ShardError(f"no frames could be read from {ref.path}")


def _size(image: np.ndarray) -> tuple[int, int]:
    return int(image.shape[1]), int(image.shape[0])


def _make_sample(
    ref: VideoRef,
    cfg: PackConfig,
    clip_index: int,
    frames: list[tuple[int, bytes]],
    sizes: tuple[tuple[int, int], tuple[int, int]],
    scale: float,
) -> ClipSample:
    indices = [index for index, _ in frames]
    meta = {
        "source": ref.source,
        "video": ref.name,
        "clip": clip_index,
        "frames": indices,
        "fps": ref.fps / cfg.frame_step,
        "size": list(sizes[1]),
        "orig_size": list(sizes[0]),
        "licence": ref.licence,
        "crc32": [zlib.crc32(data) for _, data in frames],
    }
    if ref.gt is not None:
        meta["gt"] = [_scaled_box(ref.gt[i - ref.start], scale) for i in indices]
    files = {frame_name(i): data for i, (_, data) in enumerate(frames)}
    files["json"] = json.dumps(meta, sort_keys=True).encode()
    return ClipSample(clip_key(ref, clip_index), files, len(frames))


def _scaled_box(box: tuple[float, float, float, float] | None, scale: float) -> list | None:
    if box is None:
        return None
    return [round(v * scale, 2) for v in box]
