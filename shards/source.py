"""A video to pack, as every reader describes it: where its frames are, not the frames.

A `VideoRef` is small, hashable and picklable, so packing can ship it to another process
(a Ray task) and decode the frames there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shards.errors import ShardError

Box = tuple[float, float, float, float]  # x, y, w, h in pixels of the original frame


@dataclass(frozen=True)
class VideoRef:
    source: str
    """Dataset or origin name, e.g. 'bikes', 'got10k', 'synth'; the first part of a clip key."""
    name: str
    """The video's name inside its source; the second part of a clip key."""
    path: str
    """A video file, or the folder that holds the frames."""
    frames: tuple[str, ...] = ()
    """Frame image files in temporal order (frame-folder layouts); empty for video files."""
    start: int = 0
    """First frame (inclusive) of a video-file segment."""
    stop: int | None = None
    """End frame (exclusive) of a video-file segment; None means to the end."""
    fps: float = 30.0
    gt: tuple[Box | None, ...] | None = None
    """Ground-truth box per frame of this ref (labeled data only); None entries: no box."""
    licence: str = "unknown"

    @property
    def is_video_file(self) -> bool:
        return not self.frames

    def num_frames(self) -> int:
        if self.frames:
            return len(self.frames)
        if self.stop is None:
            return max(0, video_frame_count(self.path) - self.start)
        return self.stop - self.start


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def key_part(text: str) -> str:
    """A name made safe for a WebDataset key: WebDataset splits keys on dots."""
    cleaned = _UNSAFE.sub("-", text).strip("-")
    return cleaned or "x"


def video_frame_count(path: str) -> int:
    """Frames that OpenCV can actually decode (container headers are often wrong)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ShardError(f"cannot open video {path}")
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def iter_frames(ref: VideoRef) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (original frame index, BGR uint8 image) for every frame of the ref, in order."""
    if ref.frames:
        for offset, file in enumerate(ref.frames):
            image = cv2.imread(file, cv2.IMREAD_COLOR)
            if image is None:
                raise ShardError(f"cannot read frame {file}")
            yield ref.start + offset, image
        return
    if not Path(ref.path).is_file():
        raise ShardError(f"video not found: {ref.path}")
    cap = cv2.VideoCapture(ref.path)
    if not cap.isOpened():
        raise ShardError(f"cannot open video {ref.path}")
    try:
        index = 0
        # Decode sequentially from the start: seeking by frame number is unreliable for
        # many codecs, and exact frame indices matter for the metadata.
        while ref.stop is None or index < ref.stop:
            ok, image = cap.read()
            if not ok:
                break
            if index >= ref.start:
                yield index, image
            index += 1
    finally:
        cap.release()
