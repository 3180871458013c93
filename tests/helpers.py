"""What several test files share (tests/conftest.py holds the shared fixtures).

- `square_scene`: frames of a block-textured square moving over fine noise, with its true
  boxes; an untrained width-0.25 AlexNet (seed 0) follows it (tests/pul/test_tracker.py).
- `untrained_net` / `save_untrained`: that network (in memory, as a model file).
- `save_video`: frames into a video file, for `pul track` and the packers.
- Tiny PUL data: `TINY_SYNTH` / `TINY_PACK` / `tiny_clips` (3 synthetic videos, one clip
  each), `TINY_BENCH` (their held-out benchmark), `TINY_MINING` (loose gates: a few steps
  of stage 1 make a poor tracker), `TINY_TRAIN` and `TWO_SMALL_WORKERS` (2 Ray Train
  workers sharing this machine's 2 CPUs).
- The command line: `run_cli` (`pul ...` in this process, with its exit code, stdout and
  stderr) and `pul_killed_when` (`pul ...` in a child process, SIGKILLed at a chosen moment
  with the Ray cluster it started).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SIDE = 32
"""Side of the scene's square target in pixels."""
STEP = (3.0, 2.0)
"""Its motion per frame (x, y) in pixels."""
SCENE_SIZE = (400, 240)
"""Width, height of the scene's frames."""


def square_scene(
    frames: int = 40,
    start: tuple[int, int] = (40, 60),
    seed: int = 0,
    jump_at: int | None = None,
    flat_from: int | None = None,
    look_alike: tuple[int, int] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (BGR uint8, 400 x 240) of a SIDE px square moving by STEP per frame from
    `start` over noise, and its true (x, y, w, h) boxes (N x 4 float64).

    jump_at: from this frame on the square is 150 px right of and 50 px above its path, far
    outside the search region (about 128 px wide around the last position).
    flat_from: columns from here on are flat grey (nothing to track).
    look_alike: (x, y) of a still copy of the square, flipped upside down.
    """
    rng = np.random.default_rng(seed)
    width, height = SCENE_SIZE
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if flat_from is not None:
        background[:, flat_from:] = 128
    blocks = rng.integers(0, 2, (SIDE // 4, SIDE // 4, 3), dtype=np.uint8) * 255
    texture = np.kron(blocks, np.ones((4, 4, 1), np.uint8))
    if look_alike is not None:
        x, y = look_alike
        background[y : y + SIDE, x : x + SIDE] = texture[::-1]
    images, boxes = [], []
    for t in range(frames):
        x, y = round(start[0] + STEP[0] * t), round(start[1] + STEP[1] * t)
        if jump_at is not None and t >= jump_at:
            x, y = x + 150, y - 50
        frame = background.copy()
        frame[y : y + SIDE, x : x + SIDE] = texture
        images.append(frame)
        boxes.append([x, y, SIDE, SIDE])
    return images, np.array(boxes, dtype=np.float64)


def untrained_net():
    """The untrained width-0.25 AlexNet of seed 0: it follows the square of `square_scene`."""
    import torch

    from pul.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(width=0.25))


def save_untrained(path: Path) -> Path:
    """`untrained_net()` as a model file at `path`."""
    from pul.models import ModelConfig
    from pul.weights import save_weights

    return save_weights(untrained_net(), ModelConfig(width=0.25), path)


def centre_error(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance in pixels between the centres of N x 4 (x, y, w, h) boxes, row by row."""
    return np.hypot(*((boxes[:, :2] + boxes[:, 2:] / 2) - (truth[:, :2] + truth[:, 2:] / 2)).T)


def save_video(path: Path, frames: list[np.ndarray], fps: float = 25.0, codec: str = "MJPG"):
    """`frames` (BGR uint8, all one size) as a video file; MJPG in .avi keeps them sharp."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {codec} into {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


TINY_SYNTH = {"videos": 3, "frames": 24, "width": 160, "height": 120, "seed": 3}
"""Synthetic training videos of the tiny PUL runs (SynthConfig fields)."""
TINY_BENCH = {"split": "bench", "videos": 2, "frames": 20, "width": 160, "height": 120}
"""Their held-out labeled benchmark (other photographs and textures)."""
TINY_PACK = {"workers": 1, "clip_len": 24, "max_side": 160}
"""Packing them: one clip per video (PackConfig fields)."""
TINY_MINING = {
    "proposer": "random",
    "seeds_per_clip": 16,
    "gaps": [2, 4, 8],
    "min_confidence": 0.3,
    "max_cycle_error": 0.3,
}
"""Many seeds and loose gates (MiningConfig fields): a few steps of stage 1 cannot make a
good tracker, and the tiny runs are about the stages fitting together."""
TINY_TRAIN = {"steps": 4, "batch_size": 4, "checkpoint_every": 4, "lr": 1e-3, "lr_end": 1e-4}
"""A few steps of training (TrainConfig fields)."""
TWO_SMALL_WORKERS = {"workers": 2, "cpus_per_worker": 0.5, "log_every": 1, "max_failures": 0}
"""Two Ray Train workers on half a CPU each: they fit beside a Tune trial on 2 CPUs."""


def tiny_clips(folder: Path) -> Path:
    """The tiny clip-shard set in `folder/clips` (its videos in `folder/videos`)."""
    from jobs.pack import pack
    from shards.pack_config import PackConfig
    from shards.synth import SynthConfig, generate

    videos = folder / "videos"
    generate(SynthConfig(**TINY_SYNTH), videos, False)
    clips = folder / "clips"
    pack(PackConfig(sources=[str(videos)], **TINY_PACK), clips, ["t"], False)
    return clips


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`pul ARGV...` in this process: (exit code, stdout, stderr)."""
    from jobs.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pul_command(*argv: str) -> list[str]:
    """The command line that runs `pul ARGV...` with this interpreter."""
    return [sys.executable, "-m", "jobs.cli", *argv]


def pul_killed_when(
    argv: list[str],
    ready: Callable[[], bool],
    timeout: float,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    poll: float = 0.2,
) -> None:
    """Run `pul ARGV...` in a new session and SIGKILL the whole session (the command and the
    Ray cluster it started) as soon as `ready()` holds; fail if it ends or times out first.

    Its output goes to `log` (to read when the test fails), else nowhere.
    """
    sink = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        pul_command(*argv), env=env, start_new_session=True, stdout=sink, stderr=subprocess.STDOUT
    )
    deadline = time.time() + timeout
    try:
        while not ready():
            if proc.poll() is not None or time.time() > deadline:
                tail = log.read_text()[-3000:] if log is not None else ""
                state = f"ended ({proc.returncode})" if proc.poll() is not None else "timed out"
                raise AssertionError(f"`pul {' '.join(argv[:2])}` {state} before the kill\n{tail}")
            time.sleep(poll)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group outlives its leader
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if log is not None:
            sink.close()


def default_sigint() -> None:
    """A `preexec_fn`: SIGINT as a terminal's foreground job has it (Ctrl-C works), even in
    a test run started in the background (`make test &`), whose processes inherit an ignored
    SIGINT; `pul` keeps an ignored SIGINT ignored, as nohup expects."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_ray_idle(ray, seconds: float) -> bool:
    """Whether, within `seconds`, every CPU of the cluster is free and every placement
    group removed (none held, none still asked for)."""
    from ray.util import placement_group_table

    deadline = time.monotonic() + seconds
    while True:
        groups = placement_group_table().values()
        held = any(group["state"] != "REMOVED" for group in groups)
        cpus = ray.available_resources().get("CPU", 0)
        if not held and cpus >= ray.cluster_resources().get("CPU", 0):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
