"""`pul train STAGE`: run a training stage on Ray Train, logged to MLflow."""

from __future__ import annotations

import argparse

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.train.job import STAGES, train_stage

HELP = {
    "supervised": (
        "the supervised SiamFC/SiamDW baseline on labeled clip shards",
        "Train SiamFC (model.backbone=alexnet) or SiamDW (model.backbone=resnet22) with the "
        "balanced BCE loss on clip shards that carry ground truth.",
        "pul train supervised --data work/clips --run-dir work/runs/sup model.width=0.25",
    ),
    "bd": (
        "PUL stage 1: contrastive background discrimination on unlabeled clips",
        "InfoNCE on two augmented views of patches cut from unlabeled clips, mini-batches from "
        "anchor-based hard negative mining (strategy=ahm) or random (strategy=rss); negatives "
        "gathered across DDP ranks. Ground truth in the shards, if any, is never read.",
        "pul train bd --data work/clips --run-dir work/runs/bd model.width=0.25 train.steps=500",
    ),
    "tc": (
        "PUL stage 3: a Siamese tracker learned from mined pairs with the noise-robust loss",
        "Train on the pair shards of `pul mine`, starting from the stage-1 model (init=PATH): "
        "loss.kind=nr|nr_exact|soft_bce|bce on the responses, noise loss.noise=auto (from the "
        "mined cycle errors) or a number of search-crop pixels, plus contrastive_weight x "
        "InfoNCE on the templates (AHM mini-batches), with a curriculum on the temporal gap.",
        "pul train tc --data work/pairs --run-dir work/runs/tc init=work/runs/bd/model.pt "
        "model.width=0.25",
    ),
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="train a tracker (Ray Train + MLflow)",
        description="Training stages run on Ray Train (DDP over CPU workers here, GPUs on a "
        "cluster), checkpoint every train.checkpoint_every steps, and log to MLflow. Rerunning "
        "with the same --run-dir resumes from the latest checkpoint. train.launcher=local "
        "trains in this process instead (alone, or one rank per process under torchrun), "
        "with the same checkpoints; `python -m jobs.train.standalone` does that without "
        "Ray or MLflow at all (metrics to RUN_DIR/metrics.jsonl). `pul config show STAGE` "
        "lists every setting.",
    )
    sub = train.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    for name in STAGES:
        short, long, example = HELP[name]
        p = sub.add_parser(
            name,
            formatter_class=HelpFormatter,
            help=short,
            description=f"{long}\n\nexample:\n  {example}",
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
        p.add_argument("--data", metavar="DIR", help="input shards (sets data=DIR)")
        p.add_argument("--run-dir", required=True, metavar="DIR", help="folder of this run")
        p.add_argument("--config", metavar="FILE", help="YAML preset, e.g. configs/demo.yaml")
        p.add_argument("--section", default=name, help="the section of --config to read")
        p.set_defaults(run=_run_stage, stage=name)


def _run_stage(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data={args.data}")
    cfg = load_config(STAGES[args.stage][0], args.config, args.section, overrides)
    print(f"model: {train_stage(args.stage, cfg, args.run_dir)}")
    return 0
