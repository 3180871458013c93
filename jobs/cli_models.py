"""`pul models ...`: model files. `init` writes a freshly initialised network (the
'untrained' reference every learned tracker is compared with)."""

from __future__ import annotations

import argparse

import torch

from jobs.cli_args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from pul.models import ModelConfig, build_model
from pul.weights import save_weights


def add_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models",
        formatter_class=HelpFormatter,
        help="model files (and, soon, the registry)",
    )
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "init",
        formatter_class=HelpFormatter,
        help="write an untrained model file",
        description="A network as initialised before training, saved as a model file: the "
        "'untrained' baseline of an evaluation.\n\nexample:\n"
        "  pul models init --out work/untrained.pt width=0.25",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation")
    p.set_defaults(run=_run_init)


def _run_init(args: argparse.Namespace) -> int:
    cfg = load_config(ModelConfig, overrides=args.overrides)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    model.projection = None
    print(f"untrained {cfg.backbone} (width {cfg.width}): {save_weights(model, cfg, args.out)}")
    return 0
