"""The `pul` command line: one program, a subcommand per job, `--help` at every level.

Bad input (a missing path, a corrupt shard, an impossible config) ends in one line on
stderr and exit status 2; set PUL_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from jobs.cli import (
    config_show,
    demo,
    evaluate,
    experiment,
    mine,
    mlflow_serve,
    models,
    pipeline,
    shards,
    submit,
    track,
    train,
    tune,
)
from jobs.config import ConfigError
from jobs.errors import JobError
from jobs.tracking.runs import TrackingError
from jobs.train.runner import TrainingError
from shards.errors import ShardError

USER_ERRORS = (ShardError, ConfigError, JobError, TrackingError, TrainingError)

DESCRIPTION = """\
Train visual object trackers from unlabeled video (Progressive Unsupervised Learning).

Typical session:
  pul synth --out work/synth                     labeled synthetic videos (OTB layout)
  pul shards pack work/synth --out work/clips    videos -> verified clip shards
  pul train bd --data work/clips --run-dir work/runs/bd          PUL stage 1
  pul mine --data work/clips --model work/runs/bd/model.pt --out work/pairs   stage 2
  pul train tc --data work/pairs --run-dir work/runs/tc init=work/runs/bd/model.pt
  pul eval --root work/bench --model work/runs/tc/model.pt --baseline still
  pul demo                     the whole pipeline on the bundled data, registered in MLflow
  pul pipeline --config configs/demo.yaml --work work/run1    the same, any config
  pul experiment noise-robustness --budget small   a claim of the paper, table and plot
  pul models list;  pul models promote pul-alexnet 2 --alias champion
  pul submit pipeline --profile dev --config configs/demo.yaml --work work/w   on Slurm

Configs: every job reads a typed config; pass `--config FILE` (a YAML preset from
configs/) and `key.sub=value` overrides; `pul config show JOB` lists every field.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pul", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shards.add_commands(commands)
    train.add_commands(commands)
    mine.add_command(commands)
    evaluate.add_command(commands)
    track.add_command(commands)
    tune.add_command(commands)
    experiment.add_command(commands)
    models.add_commands(commands)
    mlflow_serve.add_command(commands)
    pipeline.add_command(commands)
    # a submitted job runs this same command line on its node
    submit.add_commands(commands, entry=main)
    config_show.add_commands(commands)
    demo.add_command(commands)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Like parse_args, but positionals (paths, key=value) may follow the options too."""
    args, extra = parser.parse_known_args(argv)
    positional = next((name for name in ("items", "overrides") if hasattr(args, name)), None)
    if extra and (positional is None or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        setattr(args, positional, [*(getattr(args, positional) or []), *extra])
    return args


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    setup_logging(args.verbose)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        if os.environ.get("PUL_DEBUG"):
            raise
        message = " ".join(str(err).split())
        print(f"pul: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `pul ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("pul: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
