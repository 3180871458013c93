"""`pul shards pack|verify|inspect` and `pul synth`: data in."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter, split_overrides
from jobs.config import load_config
from jobs.pack import pack
from shards.inspect_set import contact_sheet, summary
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from shards.verify import verify_set


def add_commands(commands: argparse._SubParsersAction) -> None:
    shards = commands.add_parser(
        "shards",
        help="pack, verify and inspect clip shards",
        formatter_class=HelpFormatter,
        description="Clip shards: WebDataset tar files, one sample per clip of consecutive "
        "frames, with a manifest (counts, bytes, sha256, the command and config).",
    )
    sub = shards.add_subparsers(dest="shards_command", metavar="ACTION", required=True)
    _add_pack(sub)
    _add_verify(sub)
    _add_inspect(sub)
    _add_synth(commands)


def _config_args(parser: argparse.ArgumentParser, section: str) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML preset, e.g. configs/demo.yaml")
    parser.add_argument("--section", default=section, help="the section of --config to read")


def _add_pack(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack",
        formatter_class=HelpFormatter,
        help="pack videos into clip shards",
        description="Pack video files (mp4/avi/...) and dataset folders (GOT-10k, ILSVRC VID, "
        "LaSOT, OTB) into clip shards. Parallel across videos; an interrupted pack resumes "
        "where it stopped when rerun with the same arguments.\n\nexample:\n"
        "  pul shards pack bikes.mp4 data/GOT-10k/train --out work/clips clip_len=16",
    )
    p.add_argument("items", nargs="+", metavar="SRC|key=value", help=f"sources; {OVERRIDES_HELP}")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder of the shard set")
    p.add_argument(
        "--format",
        choices=["auto", "video", "got10k", "vid", "lasot", "otb", "vot"],
        help="layout of the sources (default: the config's, auto)",
    )
    p.add_argument("--workers", type=int, help="videos at once: 0 all Ray CPUs, 1 no Ray")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _config_args(p, "pack")
    p.set_defaults(run=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    sources, overrides = split_overrides(args.items)
    if sources:
        overrides.append(f"sources={json.dumps(sources)}")
    if args.format:
        overrides.append(f"format={args.format}")
    if args.workers is not None:
        overrides.append(f"workers={args.workers}")
    cfg = load_config(PackConfig, args.config, args.section, overrides)
    manifest = pack(cfg, args.out, command=["pul", *sys.argv[1:]], progress=not args.no_progress)
    print(
        f"{args.out}: {manifest.samples} clips, {manifest.extra.get('frames')} frames, "
        f"{len(manifest.shards)} shards, {manifest.bytes / 1e6:.1f} MB "
        f"(lineage {manifest.lineage[:12]})"
    )
    return 0


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        formatter_class=HelpFormatter,
        help="check checksums and decode every sample",
        description="Check every shard's size and sha256 against the manifest, then decode every "
        "frame of every sample. Exit status 1 names each bad shard.",
    )
    p.add_argument("folder", metavar="DIR", help="a shard set (folder with manifest.json)")
    p.add_argument("--quick", action="store_true", help="checksums only, no decoding")
    p.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    shards = len(read_manifest(args.folder).shards)  # refuses a folder that is no shard set
    bar = tqdm(total=shards, desc="verify", unit="shard")
    reports = verify_set(args.folder, decode=not args.quick, on_shard=lambda _: bar.update())
    bar.close()
    bad = [r for r in reports if not r.ok]
    for report in bad:
        print(f"BAD {report.name}: {'; '.join(report.problems[:5])}", file=sys.stderr)
    samples = sum(r.samples for r in reports)
    print(f"{args.folder}: {len(reports) - len(bad)}/{len(reports)} shards ok, {samples} samples")
    return 1 if bad else 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        formatter_class=HelpFormatter,
        help="summarise a shard set",
        description="Totals, sources, lineage hash and the command that made a shard set; "
        "optionally a PNG contact sheet of its first clips (ground truth drawn when present).",
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--sheet", metavar="PNG", help="write a contact sheet of the first clips")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    info = summary(args.folder)
    if args.json or "statistics" in info:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"{info['folder']}: {info['kind']}, {info['samples']} clips in {info['shards']} "
            f"shards, {info['bytes'] / 1e6:.1f} MB, {info['videos']} videos"
        )
        for source, counts in info["sources"].items():
            print(f"  {source:<20} {counts['clips']:>6} clips {counts['frames']:>8} frames")
        print(f"  labeled clips: {info['labeled_clips']}, skipped while reading: {info['skipped']}")
        print(f"  lineage: {info['lineage']}")
        print(f"  made by: {info['command']}")
    if args.sheet:
        print(f"contact sheet: {contact_sheet(args.folder, args.sheet)}")
    return 0


def _add_synth(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "synth",
        formatter_class=HelpFormatter,
        help="generate seeded synthetic videos",
        description="Textured objects moving over real photographs, with distractors, "
        "occlusion, scale and illumination change, motion blur and camera motion. Written in "
        "OTB layout with ground truth. split=train makes training videos; split=bench a "
        "held-out benchmark from disjoint photographs and textures.\n\nexample:\n"
        "  pul synth --out work/bench split=bench videos=20",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    p.add_argument("--out", required=True, metavar="DIR")
    _config_args(p, "synth")
    p.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    cfg = load_config(SynthConfig, args.config, args.section, args.overrides)
    sequences = generate(cfg, Path(args.out))  # records its config in OUT/synth.json
    print(f"{args.out}: {len(sequences)} sequences ({cfg.split})")
    return 0
