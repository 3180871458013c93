"""The MLflow pyfunc flavour of a pul tracker: `mlflow.pyfunc.load_model(uri).predict(...)`.

A registered tracker is an MLflow model whose data folder holds the plain `model.pt` of
`pul.weights` (and the training config); its MLmodel names this module as the loader. So
loading it imports this module from the installed `pul` package and reads the weights with
`load_weights` (`torch.load(weights_only=True)`): nothing is unpickled as code from the
artifact store.

Input of `predict` (a dict; no signature is logged, so MLflow passes it through unchanged,
and `mlflow models serve` turns `{"inputs": {...}}` JSON into the same dict of arrays):

    {"frames": N frames, each HxWx3 uint8 (a list of arrays, or one NxHxWx3 array),
     "box": [x, y, w, h] of the object in frames[0], pixels, 0-based,
     "channels": "bgr" (default: OpenCV's order, as the trackers were trained) or "rgb"}

Output: an N x 4 float64 array of [x, y, w, h] boxes, one per frame; row 0 is `box`.

`load_model(uri, model_config={"device": "cuda"})` tracks on a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pul.tracker import SiamFCTracker, tracker_config_for
from pul.weights import load_weights

WEIGHTS = "model.pt"
"""The weights file inside the model's data folder."""
CHANNELS = ("bgr", "rgb")


class PyfuncTracker:
    """A loaded tracker: `predict({"frames": ..., "box": ...})` -> N x 4 boxes."""

    def __init__(self, weights: Path, device: str = "cpu") -> None:
        self.net = load_weights(weights, device)
        self.device = device
        self.cfg = tracker_config_for(self.net)  # SiamDW's tracker for CIResNet-22

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        frames, box = parse_input(model_input)
        boxes, _ = SiamFCTracker(self.net, self.cfg, self.device).track(frames, box)
        return boxes


def parse_input(model_input: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (BGR uint8) and the first box from a predict input; ValueError if malformed."""
    if not isinstance(model_input, dict) or not {"frames", "box"} <= set(model_input):
        raise ValueError('tracker input must be a dict {"frames": [...], "box": [x, y, w, h]}')
    channels = str(np.asarray(model_input.get("channels", "bgr")).ravel()[0]).lower()
    if channels not in CHANNELS:
        raise ValueError(f"channels must be 'bgr' or 'rgb', got {channels!r}")
    frames = [np.asarray(frame) for frame in model_input["frames"]]
    if not frames:
        raise ValueError("tracker input has no frames")
    for i, frame in enumerate(frames):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i} has shape {frame.shape}, expected HxWx3")
    frames = [np.ascontiguousarray(f.astype(np.uint8, copy=False)) for f in frames]
    if channels == "rgb":
        frames = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
    box = np.asarray(model_input["box"], dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not (box[2:] > 0).all():
        raise ValueError(f"box must be [x, y, w, h] with w, h > 0, got {box.tolist()}")
    return frames, box


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> PyfuncTracker:
    """MLflow's entry point: `data_path` is the model's data folder (or the weights file)."""
    path = Path(data_path)
    weights = path / WEIGHTS if path.is_dir() else path
    device = str((model_config or {}).get("device", "cpu"))
    return PyfuncTracker(weights, device)
