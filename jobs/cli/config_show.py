"""`pul config show|resolve`: what every field of a job's config means, and its final values."""

from __future__ import annotations

import argparse

from cluster.profile import Profile
from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import describe, dump_yaml, load_config
from jobs.experiments.config import ExperimentConfig
from jobs.mine import MineJobConfig
from jobs.pipeline.config import PipelineConfig
from jobs.train.job import STAGES
from jobs.tune import SweepConfig
from shards.pack_config import PackConfig
from shards.synth import SynthConfig

CONFIGS: dict[str, type] = {
    "pack": PackConfig,
    "synth": SynthConfig,
    "mine": MineJobConfig,
    "pipeline": PipelineConfig,
    "profile": Profile,
    "tune": SweepConfig,
    "experiment": ExperimentConfig,
    **{name: config for name, (config, _) in STAGES.items()},
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser(
        "config",
        formatter_class=HelpFormatter,
        help="explain and resolve configs",
        description="Every job reads a typed config: defaults <- a YAML preset (--config) <- "
        "key.sub=value overrides. A wrong key or type is refused with the reason.",
    )
    sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="list every field of a job's config with its meaning")
    show.add_argument("job", choices=sorted(CONFIGS))
    show.set_defaults(run=_run_show)
    resolve = sub.add_parser("resolve", help="print the config a job would run with, as YAML")
    resolve.add_argument("job", choices=sorted(CONFIGS))
    resolve.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    resolve.add_argument("--config", metavar="FILE", help="YAML preset")
    resolve.add_argument(
        "--section", help="section of --config (default: the job's name; pipeline: the file)"
    )
    resolve.set_defaults(run=_run_resolve)


def _run_show(args: argparse.Namespace) -> int:
    for line in describe(CONFIGS[args.job]):
        print(line)
    return 0


def _run_resolve(args: argparse.Namespace) -> int:
    whole_file = args.job in ("pipeline", "profile")
    section = args.section or (None if whole_file else args.job)
    cfg = load_config(CONFIGS[args.job], args.config, section, args.overrides)
    print(dump_yaml(cfg), end="")
    return 0
