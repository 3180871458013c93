"""`pul track`: follow one object through a video and write the video with its box drawn."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
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

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v"}
"""What --out may end in: containers OpenCV writes with the mp4v codec."""


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
    p.add_argument(
        "--box",
        required=True,
        metavar="x,y,w,h",
        help="the object in frame 1 (pixels, inside the frame)",
    )
    p.add_argument("--out", required=True, metavar="OUT.mp4")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    add_tracking_uri(p)
    p.set_defaults(run=_run_track)


def parse_box(text: str) -> np.ndarray:
    """x,y,w,h -> four finite numbers with w, h >= 1 pixel; JobError otherwise."""
    try:
        box = np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        box = np.array([])
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] < 1 or box[3] < 1:
        raise JobError(
            f"--box must be x,y,w,h: four finite numbers, w and h at least 1 pixel, got {text!r}"
        )
    return box


def check_box_in_frame(box: np.ndarray, width: int, height: int) -> None:
    """The box must lie inside the first frame, or the tracker follows a frame corner."""
    x, y, w, h = box.tolist()
    if x < 0 or y < 0 or x + w > width or y + h > height:
        shown = ",".join(f"{v:g}" for v in box)
        raise JobError(
            f"--box {shown} is not inside the first frame ({width}x{height}): "
            f"need x >= 0, y >= 0, x + w <= {width}, y + h <= {height}"
        )


def check_out(out: Path, video: Path) -> None:
    """Refuse an output OpenCV would not write (or would write over the input) up front."""
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise JobError(
            f"--out {out} must name a video file ending in {', '.join(sorted(VIDEO_SUFFIXES))}"
        )
    if out.is_dir():
        raise JobError(f"--out {out} is a folder; give a video file name, e.g. {out / 't.mp4'}")
    if out.exists() and out.resolve() == video.resolve():
        raise JobError(f"--out {out} is the input video; choose another name")


def _run_track(args: argparse.Namespace) -> int:
    box = parse_box(args.box)
    video, out = Path(args.video), Path(args.out)
    if not video.is_file():
        raise JobError(f"video not found: {args.video}")
    check_out(out, video)
    model = args.model
    if is_remote(model):
        model = str(resolve_model(model, default_tracking_uri(args.tracking_uri), DEFAULT_CACHE))
    if not Path(model).is_file():
        raise JobError(f"model file not found: {model}")
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    if not ok:
        raise JobError(f"cannot read a frame from {args.video}")
    check_box_in_frame(box, frame.shape[1], frame.shape[0])
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = make_tracker(("model", model), args.device)
    text = out.with_suffix(".txt")
    with _atomic_outputs(out, text) as (video_part, text_part):
        writer = cv2.VideoWriter(
            str(video_part), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1]
        )
        if not writer.isOpened():
            raise JobError(f"OpenCV cannot write a video to {out}")
        try:
            tracker.init(frame, box)
            boxes = [box]
            with tqdm(total=total, unit="frame", desc="track") as bar:
                while ok:
                    writer.write(_draw(frame, boxes[-1]))
                    bar.update()
                    ok, frame = capture.read()
                    if ok:
                        boxes.append(tracker.update(frame))
        finally:
            writer.release()
        np.savetxt(text_part, np.array(boxes), fmt="%.3f", delimiter=",")
    print(f"{out}: {len(boxes)} frames; boxes in {text}")
    return 0


@contextlib.contextmanager
def _atomic_outputs(*finals: Path) -> Iterator[list[Path]]:
    """Temporary files beside `finals` (same suffix: OpenCV picks the container by it),
    moved into place only when the block succeeds; on any failure, or Ctrl-C, they are
    removed with the folders made for them, so no half-written output is left behind."""
    parent = finals[0].parent
    made = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    parts = [f.with_name(f".{f.stem}.{os.getpid()}.part{f.suffix}") for f in finals]
    try:
        yield parts
        for part, final in zip(parts, finals, strict=True):
            os.replace(part, final)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
        for folder in made:  # deepest first; only the ones this call made, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _draw(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x, y, w, h = (int(round(v)) for v in box)
    shown = frame.copy()
    cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 255, 0), 2)
    return shown
