"""Small labeled videos for packing tests: OTB-layout folders of textured frames.

Frames are seeded noise (so JPEG sizes are realistic and every frame differs) with a
bright square whose box is the ground truth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_otb_set(root: Path, videos: int = 3, frames: int = 20, size=(64, 48), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    width, height = size
    for v in range(videos):
        seq = root / f"seq{v:02d}"
        (seq / "img").mkdir(parents=True)
        boxes = []
        for f in range(frames):
            image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            x, y = 4 + f % (width - 20), 4 + (2 * f) % (height - 20)
            image[y : y + 12, x : x + 12] = 255
            cv2.imwrite(str(seq / "img" / f"{f + 1:04d}.jpg"), image)
            boxes.append(f"{x},{y},12,12")
        (seq / "groundtruth_rect.txt").write_text("\n".join(boxes) + "\n")
    return root


def write_video(path: Path, frames: int = 24, size=(64, 48), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    base = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    for f in range(frames):
        writer.write(np.roll(base, f, axis=1))
    writer.release()
    return path
