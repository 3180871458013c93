"""`pul eval` tracking several sequences at once: the same results files as one by one."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from jobs.errors import JobError
from jobs.evaluation.evaluate import EvalRequest, evaluate
from pul.batch_tracker import BatchSiamFCTracker
from tests.helpers import run_cli, save_untrained, square_scene

SEQUENCES = {"a": 9, "b": 5, "c": 13, "d": 7}
"""Sequence name -> frames: four lengths, so sequences end and start mid-batch."""


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """An OTB-layout benchmark of square scenes; sequence d is at another frame size."""
    root = tmp_path_factory.mktemp("bench") / "otb"
    for i, (name, n) in enumerate(SEQUENCES.items()):
        frames, truth = square_scene(n, start=(40 + 30 * i, 60 + 10 * i), seed=i)
        if name == "d":
            frames = [cv2.resize(f, (300, 180), interpolation=cv2.INTER_AREA) for f in frames]
            truth = truth * 0.75
        (root / name / "img").mkdir(parents=True)
        for t, frame in enumerate(frames):
            cv2.imwrite(str(root / name / "img" / f"{t + 1:04d}.png"), frame)
        np.savetxt(root / name / "groundtruth_rect.txt", truth, fmt="%.2f", delimiter=",")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_untrained(tmp_path_factory.mktemp("models") / "untrained.pt")


def run(bench: Path, model: Path, out: Path, batch: int) -> dict:
    request = EvalRequest(
        benchmark="otb",
        root=str(bench),
        out=str(out),
        models={"net": str(model)},
        workers=1,
        batch=batch,
    )
    evaluate(request)
    return json.loads((out / "metrics.json").read_text())


def without_speed(metrics: dict | list) -> dict | list:
    """metrics.json without its fps fields (timing, not tracking)."""
    if isinstance(metrics, dict):
        return {k: without_speed(v) for k, v in metrics.items() if k != "fps"}
    if isinstance(metrics, list):
        return [without_speed(v) for v in metrics]
    return metrics


def test_batched_evaluation_writes_the_same_results(bench, model, tmp_path, monkeypatch):
    one = run(bench, model, tmp_path / "one", batch=1)
    steps: list[int] = []  # sequences per batched step
    update = BatchSiamFCTracker.update

    def counted(self, frames):
        steps.append(len(frames))
        return update(self, frames)

    monkeypatch.setattr(BatchSiamFCTracker, "update", counted)
    three = run(bench, model, tmp_path / "three", batch=3)
    # 3 at a time while 3 remain, refilled as sequences end: 30 updates in 12 steps
    assert max(steps) == 3 and sum(steps) == sum(n - 1 for n in SEQUENCES.values())
    assert len(steps) == 12
    for name, n in SEQUENCES.items():
        boxes = tmp_path / "one" / "results" / "net" / f"{name}.txt"
        batched = tmp_path / "three" / "results" / "net" / f"{name}.txt"
        assert boxes.read_bytes() == batched.read_bytes(), name
        assert len(boxes.read_text().splitlines()) == n
        times = (tmp_path / "three" / "results" / "net" / f"{name}_time.txt").read_text()
        assert len(times.splitlines()) == n
    assert without_speed(one) == without_speed(three)
    # the boxes follow the squares: identical files are not identical nonsense
    assert one["trackers"]["net"]["overall"]["auc"] > 0.6
    assert three["trackers"]["net"]["overall"]["fps"] > 0


def test_batch_flag_is_documented_and_checked(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli(capsys, "eval", "--help")
    help_text = capsys.readouterr().out
    assert "--batch N" in help_text and "at once" in help_text
    code, _, err = run_cli(
        capsys, "eval", "--root", str(bench), "--baseline", "still", "--workers", "1",
        "--batch", "0", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert code == 2 and "--batch must be at least 1" in err
    with pytest.raises(JobError, match="batch"):
        EvalRequest(benchmark="otb", root=str(bench), out=str(tmp_path), batch=0)
