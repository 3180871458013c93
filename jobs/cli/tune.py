"""`pul tune`: a Ray Tune sweep of stage 3 over noise levels and batch sizes."""

from __future__ import annotations

import argparse

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.tune import SweepConfig, sweep

DESCRIPTION = """\
Train stage 3 once per grid point of noise (tc.loss.noise) x batch size
(tc.train.batch_size) on Ray Tune, each trial a full Ray Train run logged to MLflow under
the sweep's run, then score every trial's tracker on a labeled benchmark and rank them by
AUC (WORK/tune-<hash>/results.md). Rerunning the same command resumes the sweep.

example:
  pul tune --data work/demo/pairs-*/shards --init work/demo/bd-*/model.pt \\
      --benchmark work/demo/synth-bench-*/videos --work work/sweep \\
      'noise=[auto,0,8]' 'batch_size=[8,16]' tc.model.width=0.25 tc.train.steps=300
"""


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "tune",
        formatter_class=HelpFormatter,
        help="sweep stage 3 over noise and batch size (Ray Tune)",
        description=DESCRIPTION,
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--data", metavar="DIR", help="mined pair shards (sets data=DIR)")
    p.add_argument("--init", metavar="FILE", help="the stage-1 model (sets init=FILE)")
    p.add_argument("--benchmark", metavar="DIR", help="labeled benchmark (sets benchmark=DIR)")
    p.add_argument("--work", default="work/tune", metavar="DIR", help="work folder")
    p.add_argument("--config", metavar="FILE", help="YAML preset")
    p.add_argument("--section", default="tune", help="the section of --config to read")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for key in ("data", "init", "benchmark"):
        if getattr(args, key):
            overrides.append(f"{key}={getattr(args, key)}")
    cfg = load_config(SweepConfig, args.config, args.section, overrides)
    trials = sweep(cfg, args.work)
    print("\n| noise | batch size | AUC | P@20 | run folder |\n|---|---:|---:|---:|---|")
    for t in trials:
        print(
            f"| {t['noise']} | {t['batch_size']} | {t['auc']:.3f} | {t['precision_20']:.3f} "
            f"| {t['run_dir']} |"
        )
    best = trials[0]
    print(f"\nbest: noise {best['noise']}, batch size {best['batch_size']}: AUC {best['auc']:.3f}")
    return 0
