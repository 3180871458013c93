"""Tracking metrics against hand-computed cases (definitions: pul/metrics.py docstring)."""

from __future__ import annotations

import numpy as np
import pytest

from pul.metrics import (
    as_boxes,
    center_error,
    frames_per_second,
    normalized_center_error,
    precision_curve,
    rect_iou,
    score_benchmark,
    score_sequence,
    success_curve,
)

NAN = [np.nan] * 4


def iou(a, b) -> float:
    return float(rect_iou(np.array([a], float), np.array([b], float))[0])


# ---------------------------------------------------------------- IoU


def test_identical_boxes_have_iou_exactly_one():
    boxes = np.array([[0, 0, 10, 10], [3.5, 2.25, 0.5, 0.25], [-4, 7, 1e4, 3]], float)
    assert rect_iou(boxes, boxes).tolist() == [1.0, 1.0, 1.0]


def test_half_overlap_by_hand():
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)  # 1/3
    assert iou([0, 0, 10, 10], [5, 5, 10, 10]) == pytest.approx(25 / 175)  # 1/7
    assert iou([0, 0, 10, 10], [0, 0, 10, 6]) == pytest.approx(0.6)  # contained


def test_disjoint_and_touching_boxes_have_iou_zero():
    assert iou([0, 0, 10, 10], [20, 0, 10, 10]) == 0.0
    assert iou([0, 0, 10, 10], [10, 0, 10, 10]) == 0.0  # shared edge, no area
    assert iou([0, 0, 10, 10], [0, -30, 10, 10]) == 0.0


def test_degenerate_boxes_give_zero_not_nan():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10], [0, 0, 0, 0], [0, 0, -5, 10], [2, 2, 5, 0]])
    b = np.array([[0, 0, 0, 10], [0, 0, 0, 10], [0, 0, 0, 0], [-5, 0, 10, 10], [2, 2, 5, 0]])
    result = rect_iou(a.astype(float), b.astype(float))
    assert result.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_out_of_frame_boxes_are_plain_geometry():
    # [-10,-10,20,20] covers [0,0,10,10] entirely: 100 / 400.
    assert iou([-10, -10, 20, 20], [0, 0, 10, 10]) == pytest.approx(0.25)
    assert iou([-30, -30, 10, 10], [-25, -30, 10, 10]) == pytest.approx(1 / 3)


def test_nan_or_infinite_prediction_is_iou_zero_and_infinite_error():
    gt = np.array([[0, 0, 10, 10]] * 3, float)
    pred = np.array([NAN, [0, 0, np.inf, 10], [np.nan, 0, 10, 10]])
    assert rect_iou(pred, gt).tolist() == [0.0, 0.0, 0.0]
    assert np.isposinf(center_error(pred, gt)).all()
    assert np.isposinf(normalized_center_error(pred, gt)).all()


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 and 2"):
        rect_iou(np.zeros((3, 4)), np.zeros((2, 4)))


# ---------------------------------------------------------------- centre errors


def test_center_error_by_hand():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[3, 4, 10, 10], [0, 0, 20, 4]], float)  # 2nd: centre (5,5) -> (10,2)
    assert center_error(pred, gt) == pytest.approx([5.0, np.hypot(5.0, 3.0)])


def test_normalized_center_error_divides_per_axis_by_gt_size():
    gt = np.array([[0, 0, 100, 50], [0, 0, 0.5, 0.5]], float)
    pred = np.array([[10, 5, 100, 50], [2, 0, 0.5, 0.5]], float)
    # (10/100, 5/50) -> 0.1414; sizes below 1 px count as 1 (toolkit): 2/1 -> 2.
    assert normalized_center_error(pred, gt) == pytest.approx([np.hypot(0.1, 0.1), 2.0])


# ---------------------------------------------------------------- curves


def test_perfect_tracker_auc_is_twenty_over_twenty_one():
    # IoU = 1 never exceeds the last threshold 1.0 (strict >), as in the got10k toolkit.
    boxes = np.array([[5, 5, 20, 30]] * 6, float)
    score = score_sequence("same", boxes, boxes)
    assert score.success.tolist() == [1.0] * 20 + [0.0]
    assert score.auc == 20 / 21
    assert score.precision_20 == 1.0
    assert score.ao == 1.0 and score.sr50 == 1.0 and score.sr75 == 1.0


def test_success_threshold_is_strict():
    curve = success_curve(np.array([0.5, 0.5]))
    assert curve[10] == 0.0  # threshold 0.5: 0.5 > 0.5 fails
    assert curve[9] == 1.0  # threshold 0.45


def test_precision_at_20_px_on_a_hand_made_trajectory():
    gt = np.array([[100, 100, 20, 20]] * 5, float)
    shifts = [(0, 0), (10, 0), (20, 0), (21, 0), (12, 16)]  # errors 0, 10, 20, 21, 20
    pred = gt + np.array([[dx, dy, 0, 0] for dx, dy in shifts], float)
    score = score_sequence("walk", pred, gt)
    assert score.precision_20 == pytest.approx(4 / 5)
    assert score.precision[19] == pytest.approx(2 / 5)
    assert score.precision[21] == 1.0
    # Normalised by 20 px: 0, 0.5, 1, 1.05, 1 -> only frame 0 within 0.2.
    assert score.norm_precision_20 == pytest.approx(1 / 5)
    assert precision_curve(np.array([0.0, 50.0, 50.5])).tolist()[-1] == pytest.approx(2 / 3)


def test_first_prediction_is_replaced_by_the_ground_truth():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([NAN, [0, 0, 10, 10]])
    assert score_sequence("init", pred, gt).auc == 20 / 21


def test_missing_ground_truth_frames_are_excluded():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], NAN, [0, 0, 0, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], NAN])
    score = score_sequence("gaps", pred, gt)
    assert score.frames == 3  # frames 0, 1, 4
    # IoUs 1, 1/3, 0 over 3 frames: thresholds 0..0.30 -> 2/3, 0.35..0.95 -> 1/3, 1.0 -> 0.
    expected = [2 / 3] * 7 + [1 / 3] * 13 + [0.0]
    assert score.success == pytest.approx(expected)
    assert score.auc == pytest.approx((7 * 2 / 3 + 13 / 3) / 21)
    assert score.got10k_ious == pytest.approx([1 / 3, 0.0])


def test_got10k_ao_and_sr_exclude_first_frame_and_absent_target():
    gt = np.array([[0, 0, 10, 10]] * 5, float)
    gt[3] = np.nan  # target absent
    pred = np.array([[50, 50, 5, 5], [0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 6]])
    score = score_sequence("got", pred, gt)
    assert score.got10k_ious == pytest.approx([1.0, 1 / 3, 0.6])
    assert score.ao == pytest.approx((1 + 1 / 3 + 0.6) / 3)
    assert score.sr50 == pytest.approx(2 / 3)
    assert score.sr75 == pytest.approx(1 / 3)


def test_sequence_without_valid_ground_truth_has_no_curve():
    gt = np.array([[0, 0, 10, 10], NAN, NAN])
    score = score_sequence("test-split", np.zeros((3, 4)), gt)
    assert score.frames == 1
    assert score.got10k_ious.size == 0 and np.isnan(score.ao)


# ---------------------------------------------------------------- benchmark


def test_overall_curve_is_the_mean_of_sequence_curves_and_ao_pools_frames():
    box = [0, 0, 10, 10]
    a = score_sequence("a", np.array([box, box], float), np.array([box, box], float))
    far = [50, 50, 10, 10]
    b = score_sequence("b", np.array([box, far, far, far], float), np.array([box] * 4, float))
    empty = score_sequence("c", np.array([box, box], float), np.array([NAN, NAN]))
    total = score_benchmark([a, b, empty])
    # a: 1 below threshold 1.0; b: 1 of 4 frames (the first); c has no frame and is skipped.
    assert total.success == pytest.approx([0.625] * 20 + [0.0])  # pooled frames would be 0.5
    assert total.auc == pytest.approx(0.625 * 20 / 21)
    assert total.ao == pytest.approx(0.25)  # IoUs 1 | 0, 0, 0 pooled; mean of AOs would be 0.5
    assert total.sr50 == pytest.approx(0.25)
    assert set(total.sequences) == {"a", "b", "c"}


def test_fps_is_the_toolkits_mean_of_inverse_times():
    assert frames_per_second(np.array([0.1, 0.2, 0.0, np.nan])) == pytest.approx(7.5)
    assert frames_per_second(None) is None
    box = np.array([[0, 0, 10, 10]] * 2, float)
    s1 = score_sequence("s1", box, box, times=np.array([0.1, 0.1]))
    s2 = score_sequence("s2", box, box, times=np.array([0.05, 0.05]))
    s3 = score_sequence("s3", box, box)
    assert score_benchmark([s1, s2, s3]).fps == pytest.approx(15.0)


def test_as_boxes_turns_none_into_nan_rows():
    boxes = as_boxes([(1, 2, 3, 4), None])
    assert boxes.shape == (2, 4)
    assert boxes[0].tolist() == [1, 2, 3, 4] and np.isnan(boxes[1]).all()
    assert as_boxes([]).shape == (0, 4)
