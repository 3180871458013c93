"""Seeded synthetic tracking videos: textured objects moving over real photographs.

Two uses: unlabeled training videos (split 'train'; the ground truth is written but the
training stages never read it) and a held-out labeled benchmark in OTB layout (split
'bench'), whose photographs never appear in training (see photos.py).

Every video is a pure function of (config, index): the same seed gives byte-identical
JPEGs on the same OpenCV build. The plan of a video (scene.py) is separate from its
rendering (render.py) and its output (writer.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from shards.synth import writer
from shards.synth.config import SynthConfig
from shards.synth.render import TargetView, render_frame
from shards.synth.scene import build_scene

__all__ = ["SynthConfig", "generate", "render_sequence", "render_video", "sequence_name"]

OCCLUDED = 0.25
"""A frame counts as occluded when layers in front hide at least this fraction of the target."""
OUT_OF_VIEW = 0.75
"""...and as partly out of view when less than this fraction of the target is in the frame."""


def sequence_name(cfg: SynthConfig, index: int) -> str:
    return f"synth-{cfg.split}-{index:04d}"


def render_video(cfg: SynthConfig, index: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (BGR uint8) and target boxes (N x 4 float x, y, w, h) of video `index`."""
    frames, boxes, _ = render_sequence(cfg, index)
    return frames, boxes


def render_sequence(cfg: SynthConfig, index: int) -> tuple[list[np.ndarray], np.ndarray, dict]:
    """Frames, target boxes, and the video's attributes (for per-attribute evaluation)."""
    scene = build_scene(cfg, index)
    frames, views = [], []
    for t in range(cfg.frames):
        frame, view = render_frame(scene, t)
        frames.append(frame)
        views.append(view)
    boxes = scene.target.boxes.copy()
    return frames, boxes, {**scene.info, **_view_attributes(views, boxes)}


def _view_attributes(views: list[TargetView], boxes: np.ndarray) -> dict:
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    areas = boxes[:, 2] * boxes[:, 3]
    return {
        "occluded_frames": [t for t, v in enumerate(views) if v.occlusion >= OCCLUDED],
        "out_of_view_frames": [t for t, v in enumerate(views) if v.in_frame < OUT_OF_VIEW],
        "occlusion": [round(v.occlusion, 3) for v in views],
        "in_frame": [round(v.in_frame, 3) for v in views],
        "mean_speed": round(float(np.linalg.norm(np.diff(centres, axis=0), axis=1).mean()), 3),
        "area_ratio": round(float(areas.max() / areas.min()), 3),
    }


def generate(cfg: SynthConfig, out: Path, progress: bool = True) -> list[Path]:
    """Write cfg.videos sequences in OTB layout under `out`; returns their folders.

    Resumable: sequences already complete are kept, the missing ones rendered. Refuses
    (ShardError) when `out` was made with a different config.
    """
    out = Path(out)
    manifest = writer.open_output(out, cfg)
    paths = []
    names = [sequence_name(cfg, i) for i in range(cfg.videos)]
    for index, name in enumerate(tqdm(names, desc="synth videos", disable=not progress)):
        if not writer.is_complete(out, name, manifest):
            frames, boxes, attributes = render_sequence(cfg, index)
            writer.write_sequence(out, name, frames, boxes, cfg.jpeg_quality)
            manifest["sequences"][name] = attributes
            writer.save_manifest(out, manifest)
        paths.append(out / name)
    return paths
