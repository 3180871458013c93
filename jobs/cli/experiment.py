"""`pul experiment NAME`: one of the paper's claims checked by one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.errors import JobError
from jobs.experiments.config import ExperimentConfig
from jobs.experiments.run import EXPERIMENTS, run_experiment

BUDGETS = Path(__file__).resolve().parents[2] / "configs" / "experiments"
"""The presets --budget names: BUDGETS/<budget>.yaml."""

DESCRIPTION = """\
Check one of the paper's claims: a sweep over the settings the claim compares (each
trial a stage-3 training run in MLflow, scored on a held-out benchmark) and a report, a
Markdown table and a PNG, written to --out and logged to the sweep's MLflow run.

experiments:
{experiments}

The inputs (clips, the stage-1 model, mined pairs, pairs cut from ground truth, the
benchmark) are prepared once per --work folder and shared by the experiments. Rerunning
the same command resumes: finished trials are kept.

budgets: small (this 2-core machine, configs/experiments/small.yaml) or full (a GPU
cluster: bring your data, see configs/experiments/full.yaml); --config FILE for your own.

examples:
  pul experiment noise-robustness --budget small --work work/experiments
  pul experiment ahm-vs-rss --budget small --work work/experiments seeds=[0,1,2]
  pul experiment unsupervised-vs-supervised --budget small sweep.tc.train.steps=400
"""


def add_command(commands: argparse._SubParsersAction) -> None:
    listing = "\n".join(f"  {name:28s}{module.CLAIM}" for name, module in EXPERIMENTS.items())
    p = commands.add_parser(
        "experiment",
        formatter_class=HelpFormatter,
        help="check one of the paper's claims: a sweep plus a report (table and plot)",
        description=DESCRIPTION.format(experiments=listing),
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(EXPERIMENTS)}")
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--budget", default="small", help="preset: small or full (default: small)")
    p.add_argument("--config", metavar="FILE", help="your own preset instead of --budget")
    p.add_argument("--work", default="work/experiments", metavar="DIR", help="work folder")
    p.add_argument("--out", metavar="DIR", help="where the report goes (default: WORK/NAME)")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.name not in EXPERIMENTS:
        raise JobError(f"no experiment named {args.name!r}: choose one of {', '.join(EXPERIMENTS)}")
    preset = Path(args.config) if args.config else BUDGETS / f"{args.budget}.yaml"
    if not args.config and not preset.is_file():
        known = sorted(p.stem for p in BUDGETS.glob("*.yaml"))
        raise JobError(f"no budget named {args.budget!r}: choose one of {', '.join(known)}")
    cfg = load_config(ExperimentConfig, preset, None, args.overrides)
    outcome = run_experiment(args.name, cfg, args.work, args.out)
    print()
    print(outcome.report.read_text(), end="")
    print(f"\nreport: {outcome.report} (MLflow run {outcome.run_id})")
    return 0
