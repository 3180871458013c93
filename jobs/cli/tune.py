"""`pul tune`: a Ray Tune sweep of stage 3 over a search space, ranked, the best registered."""

from __future__ import annotations

import argparse

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.tune import SweepConfig, sweep

DESCRIPTION = """\
Train stage 3 once per point of a search space (space: TCConfig fields such as loss.noise,
train.batch_size, train.lr, loss.kind, contrastive_weight) on Ray Tune, each trial a full
Ray Train run logged to MLflow under the sweep's run. searcher=grid|random|optuna picks the
points (num_samples of them for random and optuna); scheduler=asha stops trials whose
validation AUC (the first frames of a few labeled sequences, validation.root, by default
the benchmark's; every tc.train.validate_every steps) falls behind. Finished trials are
scored on the benchmark and ranked by AUC (WORK/tune-<hash>/results.md and ranking.png);
the best is registered, alias candidate.
Rerunning the same command resumes the sweep.

examples:
  pul tune --config configs/sweeps/noise-batch.yaml --data work/demo/pairs-*/shards \\
      --init work/demo/bd-*/model.pt --benchmark work/demo/synth-bench-*/videos --work work/sweep
  pul tune ... 'space.loss.noise=[auto,0,8]' 'space.train.batch_size=[8,16]' \\
      tc.model.width=0.25 tc.train.steps=300
"""


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "tune",
        formatter_class=HelpFormatter,
        help="sweep stage 3 over a search space (Ray Tune: grid, random, Optuna; ASHA)",
        description=DESCRIPTION,
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--data", metavar="DIR", help="mined pair shards (sets data=DIR)")
    p.add_argument("--init", metavar="FILE", help="the stage-1 model (sets init=FILE)")
    p.add_argument("--benchmark", metavar="DIR", help="labeled benchmark (sets benchmark=DIR)")
    p.add_argument("--work", default="work/tune", metavar="DIR", help="work folder")
    p.add_argument("--config", metavar="FILE", help="YAML preset (e.g. configs/sweeps/*.yaml)")
    p.add_argument("--section", default="tune", help="the section of --config to read")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for key in ("data", "init", "benchmark"):
        if getattr(args, key):
            overrides.append(f"{key}={getattr(args, key)}")
    cfg = load_config(SweepConfig, args.config, args.section, overrides)
    outcome = sweep(cfg, args.work)
    print()
    print((outcome.folder / "results.md").read_text(), end="")
    finished = [t for t in outcome.trials if t.status == "finished"]
    stopped = len(outcome.trials) - len(finished)
    print(f"\n{len(finished)} trials finished, {stopped} stopped early: {outcome.folder}")
    if finished:
        best = finished[0]
        values = ", ".join(f"{k}={v}" for k, v in best.point.items())
        print(f"best: {values}: AUC {best.auc:.3f} (MLflow run {best.run_id})")
    if outcome.registered:
        reg = outcome.registered
        print(f"registered {reg['name']} version {reg['version']} (alias {reg['alias']})")
    return 0
