"""Train a stage with nothing but torch, numpy, OpenCV and the shard reader: no Ray, no MLflow.

    python -m jobs.train.standalone tc --data PAIRS --run-dir RUN [--config F] [key=value ...]
    torchrun --nproc_per_node 8 -m jobs.train.standalone tc --data PAIRS --run-dir RUN ...

The same stage code, loop, checkpoints and resume as `pul train` (launcher=local); metrics go
to RUN/metrics.jsonl, the model to RUN/model.pt. This is how a bare GPU image runs a real
stage end to end, and how to train under torchrun or srun without Ray. Rerunning the same
command resumes from the newest complete checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from jobs.config import ConfigError, load_config
from jobs.errors import JobError
from jobs.train.local import fit_local
from jobs.train.outcome import TrainingError
from jobs.train.sessions import distributed_place
from jobs.train.shared import MODEL_FILE
from jobs.train.stages import DONE_FILE, STAGES, check_data, claim_run_dir
from shards.errors import ShardError

log = logging.getLogger("pul")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        model = train(args.stage, args.run_dir, args.data, args.config, args.overrides)
    except (ShardError, ConfigError, JobError, TrainingError, ValueError) as err:
        print(f"pul: error: {err}", file=sys.stderr)
        return 2
    if distributed_place()[0] == 0:
        print(f"model: {model}")
    return 0


def train(
    stage_name: str,
    run_dir: str | Path,
    data: str | None = None,
    config: str | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Train `stage_name` into `run_dir` in this process (or this torchrun rank)."""
    overrides = [*overrides, "train.launcher=local"]
    if data:
        overrides.append(f"data={data}")
    config_class, stage_class = STAGES[stage_name]
    cfg = load_config(config_class, config, stage_name if config else None, overrides)
    if not cfg.data:
        raise JobError("no training data: give --data DIR (a shard folder)")
    cfg = dataclasses.replace(cfg, data=str(Path(cfg.data).resolve()))
    if getattr(cfg, "init", ""):
        cfg = dataclasses.replace(cfg, init=str(Path(cfg.init).resolve()))
    check_data(stage_name, cfg.data)
    run_dir = Path(run_dir)
    rank = distributed_place()[0]
    if rank == 0:
        claim_run_dir(run_dir, cfg)
        if (run_dir / DONE_FILE).exists():
            log.info("%s already finished; its model is %s", run_dir, run_dir / MODEL_FILE)
            return run_dir / MODEL_FILE
    checkpoint = fit_local(stage_class(cfg), cfg.train, run_dir, None, label=stage_name)
    if rank == 0:
        shutil.copyfile(checkpoint / MODEL_FILE, run_dir / MODEL_FILE)
        (run_dir / DONE_FILE).write_text(json.dumps({"checkpoint": str(checkpoint)}))
    return run_dir / MODEL_FILE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.train.standalone",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a stage without Ray or MLflow, in this process or as one rank of "
        "torchrun.\nRerun the same command to resume; RUN/metrics.jsonl holds the metrics, "
        "RUN/model.pt the model.",
        epilog="examples:\n"
        "  python -m jobs.train.standalone tc --data work/pairs --run-dir work/runs/tc \\\n"
        "      init=work/runs/bd/model.pt train.use_gpu=true train.batch_size=64\n"
        "  torchrun --nproc_per_node 8 -m jobs.train.standalone tc --data work/pairs \\\n"
        "      --run-dir work/runs/tc8 train.use_gpu=true\n"
        "`pul config show STAGE` lists every setting.",
    )
    parser.add_argument("stage", choices=sorted(STAGES), help="the stage to train")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config settings")
    parser.add_argument("--data", metavar="DIR", help="input shards (sets data=DIR)")
    parser.add_argument("--run-dir", required=True, metavar="DIR", help="folder of this run")
    parser.add_argument("--config", metavar="FILE", help="YAML preset; its STAGE section")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
