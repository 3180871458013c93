"""`pul demo`: the pipeline on the embedded default, on data that ships with the install.

Today it covers the data stage: synthetic training videos and a held-out synthetic
benchmark, packed with the real bikes/carphone footage into verified clip shards. The
training, evaluation and registration stages join it as they land (see the issues).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jobs.cli_args import HelpFormatter
from jobs.config import load_config
from jobs.pack import pack
from shards.footage import bundled_footage
from shards.inspect_set import contact_sheet
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from shards.verify import verify_set

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo",
        formatter_class=HelpFormatter,
        help="run the demo on the bundled data",
        description=__doc__,
    )
    p.add_argument("--work", default="work/demo", metavar="DIR", help="work directory")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), metavar="FILE", help="demo preset")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    work = Path(args.work)
    started = time.time()
    synth_train = load_config(SynthConfig, args.config, "synth")
    synth_bench = load_config(SynthConfig, args.config, "synth_bench")
    _step("1/4 synthetic training videos")
    generate(synth_train, work / "synth-train")
    _step("2/4 synthetic benchmark (held out: other photographs and textures)")
    generate(synth_bench, work / "synth-bench")
    _step("3/4 pack the real footage and the synthetic videos into clip shards")
    footage = bundled_footage()
    sources = [str(footage["bikes"]), str(footage["carphone_pristine"]), str(work / "synth-train")]
    pack_cfg = load_config(PackConfig, args.config, "pack", [f"sources={sources}"])
    manifest = pack(pack_cfg, work / "clips", command=["pul", "demo", "--work", str(work)])
    _step("4/4 verify every shard and sample")
    reports = verify_set(work / "clips")
    bad = [r.name for r in reports if not r.ok]
    sheet = contact_sheet(work / "clips", work / "clips-sheet.png")
    print()
    print(
        f"clip shards     {work / 'clips'}: {manifest.samples} clips, "
        f"{manifest.extra['frames']} frames, {len(manifest.shards)} shards, "
        f"{manifest.bytes / 1e6:.1f} MB, verify: {'FAILED ' + str(bad) if bad else 'ok'}"
    )
    print(f"benchmark       {work / 'synth-bench'} (OTB layout)")
    print(f"contact sheet   {sheet}")
    print(f"lineage         {manifest.lineage}")
    print(f"done in {time.time() - started:.0f} s")
    return 1 if bad else 0


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)
