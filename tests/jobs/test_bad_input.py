"""A careful user's mistakes: each ends in one line `pul: error: ...`, exit status 2, and
leaves nothing behind (no half-written video, no run folder, no store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import jobs.cli.track as track_cli
from jobs.cli import main
from jobs.config import ConfigError, load_config
from jobs.pack import pack
from jobs.train.bd import BDConfig
from shards.manifest import Manifest, write_manifest
from shards.pack_config import PackConfig
from shards.synth import SynthConfig
from tests.shards.clip_fixtures import make_otb_set, write_video

WIDTH, HEIGHT = 176, 144  # the size of the bundled carphone_pristine.mp4


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("pul: error: "), err
    return err


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "untrained.pt"
    assert main(["models", "init", "--out", str(path), "width=0.25"]) == 0
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("video")
    return write_video(folder / "v.mp4", frames=6, size=(WIDTH, HEIGHT))


def track(capsys, video: Path, model: Path, box: str, out: Path) -> tuple[int, str, str]:
    return run(
        capsys, "track", str(video), "--model", str(model), f"--box={box}", "--out", str(out)
    )


@pytest.mark.parametrize("box", ["5000,5000,40,60", "150,100,40,60", "-1,0,10,10", "0,0,177,10"])
def test_track_refuses_a_box_outside_the_first_frame(capsys, tmp_path, video, model, box):
    out = tmp_path / "new" / "t.mp4"
    err = one_line_error(*track(capsys, video, model, box, out)[::2])
    assert f"is not inside the first frame ({WIDTH}x{HEIGHT})" in err
    assert f"x + w <= {WIDTH}, y + h <= {HEIGHT}" in err
    assert not (tmp_path / "new").exists()  # nothing written, not even the folder


@pytest.mark.parametrize("box", ["nan,2,3,4", "inf,2,3,4", "1,2,inf,4", "1,2,3,-inf", "1,2,0,4"])
def test_track_refuses_a_box_that_is_not_four_finite_numbers(capsys, tmp_path, video, model, box):
    out = tmp_path / "t.mp4"
    err = one_line_error(*track(capsys, video, model, box, out)[::2])
    assert (
        f"--box must be x,y,w,h: four finite numbers, w and h at least 1 pixel, got {box!r}" in err
    )
    assert list(tmp_path.iterdir()) == []


def test_track_accepts_the_whole_frame(capsys, tmp_path, video, model):
    code, out, err = track(capsys, video, model, f"0,0,{WIDTH},{HEIGHT}", tmp_path / "t.mp4")
    assert code == 0, err
    boxes = np.loadtxt(tmp_path / "t.txt", delimiter=",")
    assert boxes.shape == (6, 4) and boxes[0].tolist() == [0, 0, WIDTH, HEIGHT]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.mp4", "t.txt"]


@pytest.mark.parametrize("name", ["t.txt", "t", "folder"])
def test_track_refuses_an_output_that_is_not_a_video_file(capsys, tmp_path, video, model, name):
    (tmp_path / "folder").mkdir()
    err = one_line_error(*track(capsys, video, model, "10,10,20,20", tmp_path / name)[::2])
    assert f"--out {tmp_path / name}" in err
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]
    assert list((tmp_path / "folder").iterdir()) == []


def test_track_refuses_to_write_over_its_input(capsys, tmp_path, model):
    source = write_video(tmp_path / "v.mp4", frames=3, size=(WIDTH, HEIGHT))
    size = source.stat().st_size
    err = one_line_error(*track(capsys, source, model, "10,10,20,20", source)[::2])
    assert "is the input video" in err
    assert source.stat().st_size == size and not (tmp_path / "v.txt").exists()


class FailingTracker:
    """Follows the box for two frames, then fails as a bug (or Ctrl-C) would."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.frames = error, 0

    def init(self, frame, box) -> None:
        self.box = box

    def update(self, frame):
        self.frames += 1
        if self.frames == 3:
            raise self.error
        return self.box


@pytest.mark.parametrize("error", [RuntimeError("tracker bug"), KeyboardInterrupt()])
def test_track_interrupted_mid_video_leaves_no_output(
    capsys, tmp_path, video, model, monkeypatch, error
):
    tracker = FailingTracker(error)
    monkeypatch.setattr(track_cli, "make_tracker", lambda spec, device: tracker)
    out = tmp_path / "deep" / "er" / "t.mp4"
    if isinstance(error, KeyboardInterrupt):
        code, _, err = track(capsys, video, model, "10,10,20,20", out)
        assert code == 130 and "interrupted" in err
    else:
        with pytest.raises(RuntimeError, match="tracker bug"):
            track(capsys, video, model, "10,10,20,20", out)
    assert tracker.frames == 3  # it did fail in the middle of the video
    assert list(tmp_path.iterdir()) == []  # no video, no boxes, no folders made for them


def test_track_an_empty_video_or_a_file_that_is_not_a_model(capsys, tmp_path, video, model):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    err = one_line_error(*track(capsys, empty, model, "1,1,4,4", tmp_path / "o" / "t.mp4")[::2])
    assert f"cannot read a frame from {empty}" in err
    fake = tmp_path / "fake.pt"
    fake.write_text("not a model\n")
    err = one_line_error(*track(capsys, video, fake, "1,1,4,4", tmp_path / "o" / "t.mp4")[::2])
    assert "not a pul model file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "fake.pt"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".nan", ".inf", "1e400"])
def test_a_non_finite_number_in_a_config_is_refused(value):
    with pytest.raises(ConfigError, match=r"^max_speed: expected a finite number, got "):
        load_config(SynthConfig, overrides=[f"max_speed={value}"])
    with pytest.raises(ConfigError, match=r"^train\.lr: expected a finite number"):
        load_config(BDConfig, overrides=[f"train.lr={value}"])


def test_synth_with_an_infinite_speed_is_one_line_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "synth"
    code, _, err = run(
        capsys, "synth", "--out", str(out), "videos=1", "frames=6", "width=160", "height=120",
        "max_speed=inf",
    )  # fmt: skip
    assert (
        one_line_error(code, err) == "pul: error: max_speed: expected a finite number, got 'inf'\n"
    )
    assert not out.exists()


@pytest.mark.parametrize("port", ["70000", "-1", "0"])
def test_mlflow_serve_refuses_a_port_out_of_range(capsys, tmp_path, port):
    code, _, err = run(
        capsys, "mlflow", "serve", "--port", port,
        "--backend-store-uri", f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"),
    )  # fmt: skip
    assert one_line_error(code, err) == (
        f"pul: error: --port must be a TCP port, 1 to 65535, got {port}\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_eval_of_an_empty_benchmark_folder(capsys, tmp_path, model):
    (tmp_path / "bench").mkdir()
    code, _, err = run(
        capsys, "eval", "--root", str(tmp_path / "bench"), "--model", str(model),
        "--out", str(tmp_path / "eval"), "--workers", "1",
    )  # fmt: skip
    assert one_line_error(code, err) == f"pul: error: no otb videos found in {tmp_path / 'bench'}\n"
    assert not (tmp_path / "eval").exists()


# --- a training stage given the wrong kind of shard set -------------------------------


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """A pair set (its manifest: all the kind check reads), labeled and unlabeled clips."""
    root = tmp_path_factory.mktemp("sets")
    (root / "pairs").mkdir()
    write_manifest(root / "pairs", Manifest(kind="pairs", shards=[]))
    labeled = make_otb_set(root / "otb", videos=2, frames=8, size=(64, 48))
    pack(PackConfig(sources=[str(labeled)], workers=1, clip_len=8), root / "labeled", ["t"], False)
    unlabeled = write_video(root / "v.mp4", frames=16, size=(64, 48))
    pack(
        PackConfig(sources=[str(unlabeled)], workers=1, clip_len=8),
        root / "unlabeled",
        ["t"],
        False,
    )
    return {"pairs": root / "pairs", "labeled": root / "labeled", "unlabeled": root / "unlabeled"}


@pytest.mark.parametrize(
    ("stage", "data", "message"),
    [
        ("bd", "pairs", "pul train bd needs clips shards (pul shards pack), but {} holds pairs"),
        (
            "supervised",
            "pairs",
            "pul train supervised needs clips shards (pul shards pack), but {} holds pairs",
        ),
        ("tc", "labeled", "pul train tc needs pairs shards (pul mine), but {} holds clips"),
        (
            "supervised",
            "unlabeled",
            "pul train supervised needs labeled clips (ground-truth boxes), but the first "
            "shard of {} has none",
        ),
    ],
)
def test_a_stage_refuses_the_wrong_kind_of_data_up_front(
    capsys, tmp_path, sets, stage, data, message
):
    run_dir = tmp_path / "runs" / stage
    code, _, err = run(
        capsys, "train", stage, "--data", str(sets[data]), "--run-dir", str(run_dir),
        f"tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
    )  # fmt: skip
    assert message.format(sets[data].resolve()) in one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []  # no run folder, no MLflow store: nothing started
