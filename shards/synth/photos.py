"""The real photographs behind the synthetic videos: scikit-image's bundled sample images.

They are read from the installed wheel's `skimage/data/` folder with OpenCV; skimage itself
is never imported (it is heavy, and only its files are needed).

The two splits are disjoint, so no background or object texture of the benchmark is ever
seen in training. Each split mixes colour and gray photographs, scenes and textures:

- train: astronaut, coffee, hubble_deep_field, ihc, motorcycle_left, motorcycle_right
  (colour); camera, page (gray scenes); brick, grass (gray textures). The motorcycle stereo
  pair shows the same scene, so both sides go to one split.
- bench: chelsea, retina, rocket (colour); coins, moon, text (gray scenes); gravel (gray
  texture).

Left out: horse, logo, phantom, color, cell, clock_motion (flat graphics or nearly uniform
images: a background without texture makes tracking trivial), chessboard_*, microaneurysms
and the tiny test files.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from shards.errors import ShardError

SPLIT_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "coffee.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "camera.png",
        "page.png",
        "brick.png",
        "grass.png",
    ),
    "bench": (
        "chelsea.png",
        "retina.jpg",
        "rocket.jpg",
        "coins.png",
        "moon.png",
        "text.png",
        "gravel.png",
    ),
}


def data_folder() -> Path:
    """The installed scikit-image wheel's sample-data folder (found without importing it)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ShardError(
            "the synthetic generator needs scikit-image's sample photographs: "
            "install scikit-image (only its data files are read)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not folder.is_dir():
        raise ShardError(f"scikit-image is installed but has no data folder at {folder}")
    return folder


def split_photos(split: str) -> list[np.ndarray]:
    """The split's photographs as read-only BGR uint8 images, in the fixed list order."""
    if split not in SPLIT_PHOTOS:
        raise ShardError(f"unknown photo split {split!r}; known: {sorted(SPLIT_PHOTOS)}")
    return [_read(name) for name in SPLIT_PHOTOS[split]]


@functools.cache
def _read(name: str) -> np.ndarray:
    # Cached per process: every video reads the same handful of photographs.
    path = data_folder() / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ShardError(f"cannot read photograph {path} (scikit-image install incomplete?)")
    image.setflags(write=False)
    return image
