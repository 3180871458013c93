"""Result files and reports: two fake trackers written, read back, scored and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.evaluation.report import format_table, score_results, write_report
from jobs.evaluation.results import (
    ResultsError,
    discover_trackers,
    read_results,
    read_times,
    write_results,
)

GT = {
    "walk": np.array([[10, 10, 20, 20]] * 4, float),
    "jump": np.array([[50, 40, 30, 10], [50, 40, 30, 10], [np.nan] * 4]),
}


def shifted(boxes: np.ndarray, dx: float) -> np.ndarray:
    return np.nan_to_num(boxes) + np.array([dx, 0, 0, 0])


@pytest.fixture
def results(tmp_path):
    """'good' repeats the ground truth (0.01 s a frame); 'bad' is 10 px off on 'walk'
    (IoU 1/3, error 10) and 25 px off on 'jump' (IoU 50/550 = 1/11, error 25)."""
    for seq, gt in GT.items():
        write_results(tmp_path, "good", seq, np.nan_to_num(gt), times=np.full(len(gt), 0.01))
        write_results(tmp_path, "bad", seq, shifted(gt, 10 if seq == "walk" else 25))
    return tmp_path


def test_scores_by_hand(results):
    scores = score_results(results, GT)
    good, bad = scores["good"], scores["bad"]
    assert good.auc == pytest.approx(20 / 21)
    assert good.precision_20 == 1.0 and good.ao == 1.0 and good.fps == pytest.approx(100.0)
    # walk: frame 0 is the init box (IoU 1), then 1/3 x3 -> (7 + 13/4) / 21 = 10.25/21;
    # jump: frames 0 and 1 (frame 2 has no ground truth): IoU 1, 1/11 -> (2 + 18/2) / 21.
    assert bad.sequences["walk"].auc == pytest.approx(10.25 / 21)
    assert bad.sequences["jump"].auc == pytest.approx(11 / 21)
    assert bad.auc == pytest.approx((10.25 + 11) / 2 / 21)
    assert bad.precision_20 == pytest.approx((1.0 + 0.5) / 2)
    assert bad.ao == pytest.approx((3 * (1 / 3) + 1 / 11) / 4)  # frames pooled, first left out
    assert bad.sr50 == 0.0 and bad.fps is None


def test_table_is_sorted_and_shows_scores(results):
    scores = score_results(results, GT)
    table = format_table(scores)
    assert table.index("| good |") < table.index("| bad |")
    assert "| good | 0.952 | 1.000 |" in table and "| bad | 0.506 | 0.750 |" in table
    assert "FPS" in table and "| 100.0 |" in table and table.rstrip().endswith("| - |")
    assert "AO" not in table
    got = format_table(scores, got10k=True)
    assert "| SR0.75 |" in got and "| 1.000 | 1.000 | 1.000 |" in got
    assert "| 0.273 | 0.000 | 0.000 |" in got  # bad: AO 3/11


def test_report_files(results, tmp_path):
    scores = score_results(results, GT, trackers=["bad", "good"])
    files = write_report(scores, tmp_path / "report", "TinyOTB", got10k=True)
    for name in ("success_plot", "precision_plot", "norm_precision_plot"):
        assert files[name].stat().st_size > 10_000
        assert files[name].read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads(files["metrics"].read_text())
    assert metrics["benchmark"] == "TinyOTB"
    assert metrics["trackers"]["bad"]["overall"]["auc"] == pytest.approx(10.625 / 21)
    assert metrics["trackers"]["bad"]["overall"]["fps"] is None
    assert len(metrics["trackers"]["good"]["overall"]["success_curve"]) == 21
    assert metrics["trackers"]["good"]["sequences"]["jump"]["frames"] == 2
    assert "## TinyOTB" in files["table"].read_text()


def test_write_then_read_round_trip(tmp_path):
    boxes = np.array([[1.23456, 2, 3, 4], [np.nan] * 4])
    path = write_results(tmp_path, "t", "s", boxes, times=[0.5, 0.25])
    assert path.read_text().splitlines()[0] == "1.235,2.000,3.000,4.000"
    back = read_results(tmp_path, "t", "s")
    assert back[0].tolist() == [1.235, 2.0, 3.0, 4.0] and np.isnan(back[1]).all()
    assert read_times(tmp_path, "t", "s").tolist() == [0.5, 0.25]
    assert not list(tmp_path.glob("t/*.partial"))


def test_reads_tabs_spaces_and_toolkit_time_folder(tmp_path):
    (tmp_path / "pytracking").mkdir()
    (tmp_path / "pytracking" / "s.txt").write_text("1\t2\t3\t4\n 5  6 7\t8 \n\n")
    (tmp_path / "pytracking" / "times").mkdir()
    (tmp_path / "pytracking" / "times" / "s_time.txt").write_text("0.1\n0.2\n")
    assert read_results(tmp_path, "pytracking", "s").tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert read_times(tmp_path, "pytracking", "s").tolist() == [0.1, 0.2]


def test_malformed_file_names_file_and_line(results):
    path = results / "bad" / "walk.txt"
    lines = path.read_text().splitlines()
    lines[2] = "1,2,3"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError, match=r"bad/walk\.txt, line 3: expected x,y,w,h"):
        score_results(results, GT)
    path.write_text("1,2,3,4\n1,2,three,4\n")
    with pytest.raises(ResultsError, match="line 2"):
        read_results(results, "bad", "walk")


def test_missing_sequence_or_wrong_length_is_an_error(results):
    (results / "bad" / "jump.txt").unlink()
    with pytest.raises(ResultsError, match="'bad' for sequence 'jump'"):
        score_results(results, GT)
    write_results(results, "bad", "jump", np.zeros((5, 4)))
    with pytest.raises(ResultsError, match="5 boxes for the 3 frames of jump"):
        score_results(results, GT)


def test_discover_trackers(results):
    (results / "empty").mkdir()
    (results / "times_only").mkdir()
    (results / "times_only" / "walk_time.txt").write_text("0.1\n")
    assert discover_trackers(results) == ["bad", "good"]
    with pytest.raises(ResultsError, match="not found"):
        discover_trackers(results / "nowhere")
    with pytest.raises(ResultsError, match="no tracker results"):
        score_results(results / "empty", GT)
