"""`pul track`: follow one object through a video and write the video with its box drawn."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from jobs.cli.args import HelpFormatter
from jobs.cli.models import add_tracking_uri
from jobs.errors import JobError
from jobs.evaluation.evaluate import make_tracker
from jobs.tracking.model_uri import DEFAULT_CACHE, is_remote, resolve_model
from jobs.tracking.registry import default_tracking_uri


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "track",
        formatter_class=HelpFormatter,
        help="track an object through a video",
        description="Track the object in --box (x,y,w,h of the first frame, pixels) through "
        "VIDEO with a model; writes OUT with the box drawn on every frame, and the boxes, one "
        "x,y,w,h line per frame, to OUT with a .txt suffix.\n\nexample:\n"
        "  pul track bikes.mp4 --model work/runs/sup/model.pt --box 300,120,40,60 --out t.mp4\n"
        "  pul track bikes.mp4 --model models:/pul-alexnet@champion --box 300,120,40,60 "
        "--out t.mp4",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="a model weights file, models:/NAME@ALIAS, models:/NAME/VERSION, "
        f"runs:/RUN_ID/model.pt or a run id (fetched from MLflow into {DEFAULT_CACHE})",
    )
    p.add_argument("--box", required=True, metavar="x,y,w,h", help="the object in frame 1")
    p.add_argument("--out", required=True, metavar="OUT.mp4")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    add_tracking_uri(p)
    p.set_defaults(run=_run_track)


def parse_box(text: str) -> np.ndarray:
    try:
        box = np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        box = np.array([])
    if box.shape != (4,) or box[2] <= 0 or box[3] <= 0:
        raise JobError(f"--box must be x,y,w,h with w, h > 0, got {text!r}")
    return box


def _run_track(args: argparse.Namespace) -> int:
    box = parse_box(args.box)
    if not Path(args.video).is_file():
        raise JobError(f"video not found: {args.video}")
    model = args.model
    if is_remote(model):
        model = str(resolve_model(model, default_tracking_uri(args.tracking_uri), DEFAULT_CACHE))
    if not Path(model).is_file():
        raise JobError(f"model file not found: {model}")
    capture = cv2.VideoCapture(args.video)
    ok, frame = capture.read()
    if not ok:
        raise JobError(f"cannot read a frame from {args.video}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = make_tracker(("model", model), args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
    tracker.init(frame, box)
    boxes = [box]
    with tqdm(total=total, unit="frame", desc="track") as bar:
        while ok:
            writer.write(_draw(frame, boxes[-1]))
            bar.update()
            ok, frame = capture.read()
            if ok:
                boxes.append(tracker.update(frame))
    writer.release()
    text = out.with_suffix(".txt")
    np.savetxt(text, np.array(boxes), fmt="%.3f", delimiter=",")
    print(f"{out}: {len(boxes)} frames; boxes in {text}")
    return 0


def _draw(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x, y, w, h = (int(round(v)) for v in box)
    shown = frame.copy()
    cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 255, 0), 2)
    return shown
