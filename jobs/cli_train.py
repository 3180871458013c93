"""`pul train STAGE`: run a training stage on Ray Train, logged to MLflow."""

from __future__ import annotations

import argparse

from jobs.cli_args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.train.job import train_supervised
from jobs.train.supervised import SupervisedConfig


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="train a tracker (Ray Train + MLflow)",
        description="Training stages run on Ray Train (DDP over CPU workers here, GPUs on a "
        "cluster), checkpoint every train.checkpoint_every steps, and log to MLflow. Rerunning "
        "with the same --run-dir resumes from the latest checkpoint.",
    )
    sub = train.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    p = sub.add_parser(
        "supervised",
        formatter_class=HelpFormatter,
        help="the supervised SiamFC/SiamDW baseline on labeled clip shards",
        description="Train SiamFC (model.backbone=alexnet) or SiamDW (model.backbone=resnet22) "
        "with the balanced BCE loss on clip shards that carry ground truth.\n\nexample:\n"
        "  pul train supervised --data work/clips --run-dir work/runs/sup "
        "model.width=0.25 train.steps=500",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--data", metavar="DIR", help="labeled clip shards (sets data=DIR)")
    p.add_argument("--run-dir", required=True, metavar="DIR", help="folder of this run")
    p.add_argument("--config", metavar="FILE", help="YAML preset, e.g. configs/demo.yaml")
    p.add_argument("--section", default="supervised", help="the section of --config to read")
    p.set_defaults(run=_run_supervised)


def _run_supervised(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data={args.data}")
    cfg = load_config(SupervisedConfig, args.config, args.section, overrides)
    model = train_supervised(cfg, args.run_dir)
    print(f"model: {model}")
    return 0
