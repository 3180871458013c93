"""`pul mine`: PUL stage 2, mining temporal correspondences with a stage-1 model."""

from __future__ import annotations

import argparse

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.mine import MineJobConfig, mine


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "mine",
        formatter_class=HelpFormatter,
        help="PUL stage 2: mine pairs from unlabeled clips",
        description="Propose seed boxes in clips (mining.proposer=motion|objectness|random), track "
        "them forward with the stage-1 (BD) model, keep a pair only while the backward "
        "(cycle) check and the confidence pass, and write pair shards with their own "
        "manifest. Runs as Ray tasks, one per input shard; an interrupted run resumes.\n\n"
        "example:\n  pul mine --data work/clips --model work/runs/bd/model.pt --out work/pairs",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--data", metavar="DIR", help="clip shards (sets data=DIR)")
    p.add_argument("--model", metavar="PATH", help="the stage-1 model file (sets model=PATH)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder of pair shards")
    p.add_argument("--config", metavar="FILE", help="YAML preset")
    p.add_argument("--section", default="mine", help="the section of --config to read")
    p.set_defaults(run=_run_mine)


def _run_mine(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data={args.data}")
    if args.model:
        overrides.append(f"model={args.model}")
    cfg = load_config(MineJobConfig, args.config, args.section, overrides)
    manifest = mine(cfg, args.out)
    stats = manifest.extra
    line = (
        f"{args.out}: {manifest.samples} pairs from {stats.get('clips_with_pairs')} of "
        f"{stats.get('clips')} clips, {len(manifest.shards)} shards "
        f"(lineage {manifest.lineage[:12]})"
    )
    quality = stats.get("quality")
    if quality:
        line += f"; {100 * quality['within_8px']:.0f}% of the on-target pairs within 8 px"
    print(line)
    return 0
