"""`pul models ...`: model files and the MLflow model registry.

`init` writes a freshly initialised network (the 'untrained' reference every learned tracker
is compared with); `list`, `promote` and `pull` work on the registered trackers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from jobs.cli.args import OVERRIDES_HELP, HelpFormatter
from jobs.config import load_config
from jobs.tracking import registry
from jobs.tracking.model_uri import (
    checked,
    fetch_version,
    parse_spec,
    registered_version,
    resolve_model,
)
from jobs.tracking.registry import RegistryError, VersionInfo
from pul.models import ModelConfig, build_model
from pul.weights import load_weights, save_weights

TRACKING_URI_HELP = (
    "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
    f"{registry.DEFAULT_WORK}/mlflow.db, the store of jobs run with "
    f"--run-dir {registry.DEFAULT_WORK}/NAME)"
)
CARD = "model-card.json"


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default="", metavar="URI", help=TRACKING_URI_HELP)


def add_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models",
        formatter_class=HelpFormatter,
        help="model files and the MLflow model registry",
        description="Model files, and the trackers registered in MLflow: every trained "
        "tracker is a version of pul-alexnet or pul-resnet22 with its AUC, precision and data "
        "lineage as tags; the alias 'candidate' marks the newest, 'champion' the one in use.\n\n"
        "examples:\n"
        "  pul models init --out work/untrained.pt width=0.25\n"
        "  pul models list\n"
        "  pul models promote pul-alexnet 3 --alias champion\n"
        "  pul models pull models:/pul-alexnet@champion --out work/champion",
    )
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    _add_init(sub)
    _add_list(sub)
    _add_promote(sub)
    _add_pull(sub)


def _add_init(sub: argparse._SubParsersAction) -> None:
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


def _add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        formatter_class=HelpFormatter,
        help="the registered trackers",
        description="One line per registered version: name, version, aliases, AUC, "
        "precision, data lineage (first 12 hex digits of each lineage tag), when it was "
        "registered and the MLflow run that made it.\n\nexample:\n"
        "  pul models list --name pul-alexnet",
    )
    p.add_argument("--name", default=None, help="only this registered model")
    add_tracking_uri(p)
    p.set_defaults(run=_run_list)


def _add_promote(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        formatter_class=HelpFormatter,
        help="point an alias (champion) at a version",
        description="Move ALIAS to version VERSION of NAME. Refused when the version has no "
        "AUC, or an AUC below that of the version holding ALIAS now (--force overrides).\n\n"
        "example:\n  pul models promote pul-alexnet 3 --alias champion",
    )
    p.add_argument("name", metavar="NAME", help="registered model, e.g. pul-alexnet")
    p.add_argument("version", metavar="VERSION", help="version number")
    p.add_argument("--alias", default=registry.CHAMPION, help="the alias to move")
    p.add_argument("--force", action="store_true", help="promote even with a lower AUC")
    add_tracking_uri(p)
    p.set_defaults(run=_run_promote)


def _add_pull(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pull",
        formatter_class=HelpFormatter,
        help="download a registered tracker as a model file",
        description=f"Write OUT/model.pt (a model file for --model of eval, track, mine) and "
        f"OUT/{CARD} (name, version, aliases, metrics, tags, run). The file is checked: one "
        "that would run code when loaded is refused.\n\nexamples:\n"
        "  pul models pull models:/pul-alexnet@champion --out work/champion\n"
        "  pul models pull models:/pul-resnet22/2 --out work/res-v2",
    )
    p.add_argument("uri", metavar="URI", help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/…")
    p.add_argument("--out", required=True, metavar="DIR")
    add_tracking_uri(p)
    p.set_defaults(run=_run_pull)


def _run_init(args: argparse.Namespace) -> int:
    cfg = load_config(ModelConfig, overrides=args.overrides)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    model.projection = None
    print(f"untrained {cfg.backbone} (width {cfg.width}): {save_weights(model, cfg, args.out)}")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    uri = registry.default_tracking_uri(args.tracking_uri)
    versions = registry.list_versions(registry.connect(uri), args.name)
    if not versions:
        print(f"no registered trackers at {uri}")
        return 0
    print(format_versions(versions))
    return 0


def format_versions(versions: list[VersionInfo]) -> str:
    header = ("name", "version", "aliases", "AUC", "precision", "lineage", "created", "run")
    rows = [header] + [
        (
            v.name,
            v.version,
            ",".join(v.aliases) or "-",
            _number(v.metrics.get("auc")),
            _number(v.metrics.get("precision")),
            "+".join(value[:12] for value in v.lineage.values()) or "-",
            v.created.strftime("%Y-%m-%d %H:%M"),
            v.run_id or "-",
        )
        for v in versions
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _run_promote(args: argparse.Namespace) -> int:
    client = registry.connect(registry.default_tracking_uri(args.tracking_uri))
    print(registry.promote(client, args.name, args.version, args.alias, args.force))
    return 0


def _run_pull(args: argparse.Namespace) -> int:
    spec = parse_spec(args.uri)
    if not spec.remote:
        raise RegistryError(f"not a registry URI: {args.uri!r} (expected models:/… or runs:/…)")
    uri = registry.default_tracking_uri(args.tracking_uri)
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="pul-pull-") as tmp:
        card: dict = {"uri": args.uri, "tracking_uri": uri}
        if spec.run:
            weights = resolve_model(args.uri, uri, Path(tmp))
            card["run_id"] = spec.run
        else:
            info = registered_version(registry.connect(uri), spec)
            weights = fetch_version(info, uri, Path(tmp))
            card.update(_card(info))
        checked(weights, args.uri)  # refuses a file that would run code, before copying
        net = load_weights(weights)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(weights, out / "model.pt")
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    kind = type(net.backbone).__name__
    print(f"{args.uri} -> {out / 'model.pt'} ({kind}); card: {out / CARD}")
    return 0


def _card(info: VersionInfo) -> dict:
    return {
        "name": info.name,
        "version": info.version,
        "aliases": info.aliases,
        "metrics": info.metrics,
        "lineage": info.lineage,
        "tags": info.tags,
        "run_id": info.run_id,
        "created": info.created.isoformat(timespec="seconds"),
        "source": info.source,
    }
