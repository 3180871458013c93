"""`pul pipeline`: the whole PUL pipeline as one resumable job."""

from __future__ import annotations

import argparse

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.pipeline.config import PipelineConfig
from jobs.pipeline.run import run_pipeline
from jobs.pipeline.summary import format_summary

DESCRIPTION = """\
Pack (or reuse verified clip shards) -> stage 1 (background discrimination) -> stage 2
(mining) -> stage 3 (tracker training) -> evaluation on a held-out benchmark -> registration
in the MLflow model registry (alias `candidate`).

Every step's output goes to WORK/<step>-<hash>, the hash covering its inputs' content, its
config and the code version: rerunning the same command after a crash skips the finished
steps and resumes the interrupted one (training from its last checkpoint). One parent MLflow
run per pipeline, a nested run per stage.

examples:
  pul pipeline --config configs/demo.yaml --work work/demo
  pul pipeline --config configs/demo.yaml --work work/big data.synth.videos=200 tc.train.steps=3000
"""


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "pipeline",
        formatter_class=HelpFormatter,
        help="the whole PUL pipeline: pack, stages 1-3, evaluate, register",
        description=DESCRIPTION,
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--config", metavar="FILE", help="YAML preset, e.g. configs/demo.yaml")
    p.add_argument("--work", default="work/pipeline", metavar="DIR", help="work folder")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(PipelineConfig, args.config, None, args.overrides)
    print(format_summary(run_pipeline(cfg, args.work)))
    return 0
