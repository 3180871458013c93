"""`pul eval`, `pul track` and `pul models init` from the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from jobs.cli import main
from jobs.evaluation.results import write_results
from pul.boxes import iou
from tests.helpers import centre_error, run_cli, save_video, square_scene
from tests.shards.clip_fixtures import make_otb_set, write_video


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_otb_set(tmp_path_factory.mktemp("bench") / "otb", videos=2, frames=12)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "untrained.pt"
    assert main(["models", "init", "--out", str(path), "width=0.25"]) == 0
    return path


def test_eval_scores_models_baselines_and_saved_results(bench, untrained, tmp_path, capsys):
    gt = {
        seq.name: np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
        for seq in sorted(bench.iterdir())
    }
    others = tmp_path / "others"
    for seq, boxes in gt.items():
        write_results(others, "oracle", seq, boxes)
    code, out, _ = run_cli(
        capsys,
        "eval",
        "--root",
        str(bench),
        "--model",
        f"net={untrained}",
        "--baseline",
        "still",
        "--results",
        str(others),
        "--out",
        str(tmp_path / "eval"),
        "--workers",
        "1",
    )
    assert code == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    aucs = {name: t["overall"]["auc"] for name, t in metrics["trackers"].items()}
    assert set(aucs) == {"net", "still", "oracle"}
    assert aucs["oracle"] == pytest.approx(20 / 21)  # perfect boxes: IoU 1 passes 20 of 21
    assert aucs["still"] < 0.5  # the square moves 1 px per frame off a 12 px box
    assert (tmp_path / "eval" / "success_plot.png").stat().st_size > 10_000
    assert "oracle" in out and "still" in out


def test_eval_bad_model_and_root_are_one_line_errors(bench, tmp_path, capsys):
    nowhere = str(tmp_path / "nowhere")
    code, _, err = run_cli(capsys, "eval", "--root", nowhere, "--baseline", "still")
    assert code == 2 and err.count("\n") == 1 and "nowhere" in err
    code, _, err = run_cli(
        capsys,
        "eval",
        "--root",
        str(bench),
        "--model",
        str(tmp_path / "x.pt"),
        "--workers",
        "1",
        "--out",
        str(tmp_path / "e"),
    )
    assert code == 2 and err.strip().endswith("x.pt") and err.count("pul: error") == 1
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a model")
    code, _, err = run_cli(
        capsys,
        "eval",
        "--root",
        str(bench),
        "--model",
        str(garbage),
        "--workers",
        "1",
        "--out",
        str(tmp_path / "e"),
    )
    assert code == 2 and "not a pul model file" in err


def test_track_follows_the_square_and_writes_its_boxes(untrained, tmp_path, capsys):
    frames, truth = square_scene(30)  # the square moves 3 px right, 2 px down per frame
    video = save_video(tmp_path / "square.avi", frames)
    box = ",".join(str(int(v)) for v in truth[0])
    code, out, _ = run_cli(
        capsys, "track", str(video), "--model", str(untrained), "--box", box,
        "--out", str(tmp_path / "t.mp4"),
    )  # fmt: skip
    assert code == 0 and "30 frames" in out
    boxes = np.loadtxt(tmp_path / "t.txt", delimiter=",")
    assert boxes.shape == (30, 4) and boxes[0].tolist() == truth[0].tolist()
    # measured: IoU 0.90-0.95 and centre error about 1 px on every frame
    assert iou(boxes, truth).min() > 0.7 and centre_error(boxes, truth).max() < 4.0
    # a box that stays where it started is off the square after a few frames
    still = np.repeat(truth[:1], 30, axis=0)
    assert (iou(still, truth) > 0.7).sum() == 2 and iou(still, truth)[-1] == 0.0
    shown = cv2.VideoCapture(str(tmp_path / "t.mp4"))
    assert shown.get(cv2.CAP_PROP_FRAME_COUNT) == 30


def test_track_bad_box(untrained, tmp_path, capsys):
    video = write_video(tmp_path / "v.mp4", frames=3)
    code, _, err = run_cli(
        capsys,
        "track",
        str(video),
        "--model",
        str(untrained),
        "--box",
        "1,2,3",
        "--out",
        str(tmp_path / "t.mp4"),
    )
    assert code == 2 and "--box must be x,y,w,h" in err
