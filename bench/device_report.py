"""Gather what bench/device.sh measured into OUT/benchmarks.json, naming the machine.

    python bench/device_report.py OUT --status track=0,train=0,... [--batch 64]

Reads OUT/track.json (bench/track_speed.py), OUT/train.json (bench/train_throughput.py)
and OUT/tc-metrics.jsonl (the short stage-3 run of jobs.train.standalone); a step that
failed or timed out leaves its part null and its exit status in `steps` (124: timeout).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

import torch


def machine() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.machine()})",
        "gpu": _nvidia_smi() if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def training_run(metrics: Path, batch: int) -> dict[str, Any] | None:
    """The standalone run's metrics.jsonl, summed up: its steps, losses and speed (the
    first logged interval holds the DataLoader start and is left out of the median)."""
    if not metrics.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    losses = [r["loss"] for r in rows if "loss" in r]
    speeds = [r["steps_per_s"] for r in rows if "steps_per_s" in r]
    steady = speeds[1:] or speeds
    median = statistics.median(steady) if steady else None
    return {
        "steps": max((r["step"] for r in rows), default=-1) + 1,
        "batch": batch,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "steps_per_s": speeds,
        "pairs_per_s_median": median * batch if median else None,
    }


def _nvidia_smi() -> str | None:
    query = "--query-gpu=name,memory.total,driver_version,clocks.max.sm"
    try:
        out = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--status", default="", help="step=exit code, comma separated")
    parser.add_argument("--batch", type=int, default=64, help="batch of the standalone run")
    args = parser.parse_args()
    steps = dict(item.split("=", 1) for item in args.status.split(",") if "=" in item)
    report = {
        **machine(),
        "steps": {name: int(code) for name, code in steps.items()},
        "track": _json_or_none(args.out / "track.json"),
        "train": _json_or_none(args.out / "train.json"),
        "tc_run": training_run(args.out / "tc-metrics.jsonl", args.batch),
    }
    (args.out / "benchmarks.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{args.out / 'benchmarks.json'}: {report['device']}, steps {report['steps']}")


if __name__ == "__main__":
    main()
