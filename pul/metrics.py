"""Single-object tracking benchmark metrics, as the got10k toolkit computes them.

Boxes are Nx4 float arrays of (x, y, w, h) in pixels, one row per frame; a missing box is a
row of NaN. Definitions follow got-10k/toolkit (`got10k/utils/metrics.py`,
`experiments/otb.py`, `experiments/lasot.py`, `experiments/got10k.py`):

- success curve: fraction of frames with IoU strictly greater than each of the 21
  thresholds linspace(0, 1, 21); its AUC is the curve's mean. A perfect tracker scores
  20/21, not 1, because IoU = 1 never exceeds the last threshold (the toolkit does the same).
- precision curve: fraction of frames with centre error <= each of 0, 1, ..., 50 px;
  P@20 is its value at 20 px.
- normalised precision curve: the same over 51 thresholds linspace(0, 0.5, 51) of the
  centre error divided by the ground-truth size per axis (LaSOT). Both the toolkit's
  score (the curve's mean, "AUC") and the value at 0.2 (pytracking's and most papers'
  P_norm) are kept; reports show the value at 0.2.
- one-pass (OTB/LaSOT) curves: the tracker's first box is replaced by the ground truth,
  as the toolkit does, since the first box is the initialisation, not a prediction.
- GOT-10k: AO is the mean IoU, SR0.5 / SR0.75 the fractions with IoU > 0.5 / > 0.75, over
  every frame but the first. Over a benchmark they pool the frames of all sequences (the
  toolkit concatenates IoUs), whereas the one-pass curves average per-sequence curves.

Unlike the toolkit, frames whose ground truth is missing, NaN or of non-positive size are
left out of every metric (the toolkit drops only NaN rows, and only for LaSOT), and boxes
are not clipped to the image (GOT-10k's toolkit clips to the frame size, unknown here).
A predicted box that is NaN, infinite or of non-positive size has IoU 0 and, when not
finite, an infinite centre error: a lost target is a failure, never a NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pul.boxes import iou

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64)  # pixels
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)
AT_20 = 20  # index of 20 px in PRECISION_THRESHOLDS and of 0.2 in NORM_PRECISION_THRESHOLDS


def as_boxes(boxes: Sequence[Sequence[float] | None] | np.ndarray) -> np.ndarray:
    """An Nx4 float array from boxes or Nones (e.g. a VideoRef's gt); None becomes NaN."""
    rows = [(np.nan,) * 4 if box is None else tuple(box) for box in boxes]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """True per row whose four values are finite and whose width and height are positive."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.all(np.isfinite(boxes), axis=-1) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)


def rect_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU per row of two Nx4 xywh arrays; 0 where either box is invalid, never NaN."""
    a, b = _pair(a, b)
    ok = valid_boxes(a) & valid_boxes(b)
    a, b = np.where(ok[:, None], a, 1.0), np.where(ok[:, None], b, 1.0)
    return np.where(ok, np.clip(iou(a, b), 0.0, 1.0), 0.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between box centres; inf where either box is not finite.

    The toolkit's centres are x + (w - 1) / 2; the -1/2 cancels in the difference.
    """
    a, b = _pair(a, b)
    distance = np.hypot(*(_centres(a) - _centres(b)).T)
    return np.where(_finite(a) & _finite(b), distance, np.inf)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre offset divided per axis by the ground-truth width and height, then its norm.

    As the toolkit, sizes below 1 px count as 1 px so that tiny boxes do not explode.
    """
    pred, gt = _pair(pred, gt)
    scale = np.maximum(np.nan_to_num(gt[:, 2:], nan=1.0), 1.0)
    distance = np.hypot(*((_centres(pred) - _centres(gt)) / scale).T)
    return np.where(_finite(pred) & _finite(gt), distance, np.inf)


def success_curve(ious: np.ndarray) -> np.ndarray:
    """Fraction of frames with IoU > each of SUCCESS_THRESHOLDS (strictly greater)."""
    return _fractions(np.asarray(ious)[:, None] > SUCCESS_THRESHOLDS[None, :])


def precision_curve(errors: np.ndarray) -> np.ndarray:
    """Fraction of frames with centre error <= each of PRECISION_THRESHOLDS (pixels)."""
    return _fractions(np.asarray(errors)[:, None] <= PRECISION_THRESHOLDS[None, :])


def norm_precision_curve(errors: np.ndarray) -> np.ndarray:
    """Fraction of frames with normalised centre error <= each NORM_PRECISION_THRESHOLDS."""
    return _fractions(np.asarray(errors)[:, None] <= NORM_PRECISION_THRESHOLDS[None, :])


def frames_per_second(times: np.ndarray | None) -> float | None:
    """Mean of 1/t over the positive, finite seconds per frame (the toolkit's speed)."""
    if times is None:
        return None
    times = np.asarray(times, dtype=np.float64)
    times = times[np.isfinite(times) & (times > 0)]
    return float(np.mean(1.0 / times)) if times.size else None


class _CurveScores:
    """The scores read off the three curves, shared by a sequence's and a benchmark's."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray

    @property
    def auc(self) -> float:
        return _mean(self.success)

    @property
    def precision_20(self) -> float:
        return float(self.precision[AT_20])

    @property
    def norm_precision_20(self) -> float:
        return float(self.norm_precision[AT_20])

    @property
    def norm_precision_auc(self) -> float:
        return _mean(self.norm_precision)


@dataclass(frozen=True, eq=False)
class SequenceScore(_CurveScores):
    """One tracker's scores on one sequence: curves over the valid frames, GOT-10k IoUs."""

    name: str
    frames: int
    """Frames with a valid ground-truth box, i.e. the frames the curves are computed over."""
    success: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    norm_precision: np.ndarray = field(repr=False)
    got10k_ious: np.ndarray = field(repr=False)
    """IoU of every valid frame but the first: what AO and SR average."""
    fps: float | None = None

    @property
    def ao(self) -> float:
        return _mean(self.got10k_ious)

    @property
    def sr50(self) -> float:
        return _mean(self.got10k_ious > 0.5)

    @property
    def sr75(self) -> float:
        return _mean(self.got10k_ious > 0.75)


def score_sequence(
    name: str, pred: np.ndarray, gt: np.ndarray, times: np.ndarray | None = None
) -> SequenceScore:
    """Scores a tracker's boxes on one sequence; frame 0 is the initialisation (see top)."""
    pred, gt = _pair(pred, gt)
    if len(gt) == 0:
        raise ValueError(f"sequence {name!r} has no frames")
    pred = pred.copy()
    pred[0] = gt[0]
    keep = valid_boxes(gt)
    ious = rect_iou(pred[keep], gt[keep])
    keep_got = keep.copy()
    keep_got[0] = False
    return SequenceScore(
        name=name,
        frames=int(keep.sum()),
        success=success_curve(ious),
        precision=precision_curve(center_error(pred[keep], gt[keep])),
        norm_precision=norm_precision_curve(normalized_center_error(pred[keep], gt[keep])),
        got10k_ious=rect_iou(pred[keep_got], gt[keep_got]),
        fps=frames_per_second(times),
    )


@dataclass(frozen=True, eq=False)
class BenchmarkScore(_CurveScores):
    """One tracker over a benchmark; curves are the mean of the per-sequence curves."""

    sequences: dict[str, SequenceScore] = field(repr=False)
    success: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    norm_precision: np.ndarray = field(repr=False)
    ao: float
    sr50: float
    sr75: float
    fps: float | None
    """Mean over the sequences that have timings of their fps (the toolkit's OTB speed)."""

    def summary(self) -> dict[str, float | None]:
        """The headline numbers, keyed as the report's table and JSON name them."""
        return {
            "auc": self.auc,
            "precision_20": self.precision_20,
            "norm_precision_20": self.norm_precision_20,
            "norm_precision_auc": self.norm_precision_auc,
            "ao": self.ao,
            "sr50": self.sr50,
            "sr75": self.sr75,
            "fps": self.fps,
        }


def score_benchmark(scores: Sequence[SequenceScore]) -> BenchmarkScore:
    """Averages per-sequence curves (OTB/LaSOT) and pools frames for AO/SR (GOT-10k).

    A sequence without any valid ground-truth frame has no curve and is left out of the
    curve means (the toolkit would average in its NaN curve).
    """
    scored = [s for s in scores if s.frames > 0]
    ious = np.concatenate([s.got10k_ious for s in scores] or [np.zeros(0)])
    speeds = [s.fps for s in scores if s.fps is not None]
    return BenchmarkScore(
        sequences={s.name: s for s in scores},
        success=_mean_curve([s.success for s in scored], SUCCESS_THRESHOLDS),
        precision=_mean_curve([s.precision for s in scored], PRECISION_THRESHOLDS),
        norm_precision=_mean_curve([s.norm_precision for s in scored], NORM_PRECISION_THRESHOLDS),
        ao=_mean(ious),
        sr50=_mean(ious > 0.5),
        sr75=_mean(ious > 0.75),
        fps=float(np.mean(speeds)) if speeds else None,
    )


# ---------------------------------------------------------------- helpers


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in length: {len(a)} and {len(b)} frames")
    return a, b


def _finite(boxes: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(boxes), axis=-1)


def _centres(boxes: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf - inf in a lost box; masked by the callers
        return boxes[:, :2] + boxes[:, 2:] / 2.0


def _fractions(hits: np.ndarray) -> np.ndarray:
    """Column means of a frames x thresholds table; NaN columns when there is no frame."""
    if hits.shape[0] == 0:
        return np.full(hits.shape[1], np.nan)
    return hits.mean(axis=0)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if np.size(values) else float("nan")


def _mean_curve(curves: list[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    return np.mean(curves, axis=0) if curves else np.full(len(thresholds), np.nan)
