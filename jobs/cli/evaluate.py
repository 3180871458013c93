"""`pul eval`: track a labeled benchmark and score, plot and tabulate the trackers."""

from __future__ import annotations

import argparse

from jobs.cli.args import HelpFormatter
from jobs.cli.models import add_tracking_uri
from jobs.errors import JobError
from jobs.evaluation.evaluate import STILL, EvalRequest, evaluate
from jobs.evaluation.report import format_table
from jobs.tracking.model_uri import DEFAULT_CACHE, is_remote, parse_spec, resolve_model
from jobs.tracking.registry import default_tracking_uri


def add_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "eval",
        formatter_class=HelpFormatter,
        help="evaluate trackers on a labeled benchmark",
        description="One-pass evaluation (OTB protocol: success AUC over 21 IoU thresholds, "
        "precision at 20 px, normalised precision; GOT-10k: AO, SR0.5, SR0.75). Writes per-"
        "sequence results (OTB text format), metrics.json, table.md and success/precision "
        "plots with every tracker on one plot.\n\nexamples:\n"
        "  pul eval --benchmark otb --root work/demo/synth-bench --model work/runs/sup/model.pt\n"
        "  pul eval --root work/bench --model models:/pul-alexnet@champion --model new=RUN_ID\n"
        "  pul eval --benchmark otb --root OTB100 --results pysot_results/ --out work/eval",
    )
    p.add_argument(
        "--benchmark",
        default="otb",
        choices=["otb", "got10k", "lasot", "vot"],
        help="layout of --root",
    )
    p.add_argument("--root", required=True, metavar="DIR", help="the benchmark folder")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help="a tracker to evaluate (repeatable): a model weights file, models:/NAME@ALIAS, "
        "models:/NAME/VERSION, runs:/RUN_ID/model.pt or a run id (fetched from MLflow into "
        f"{DEFAULT_CACHE})",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        choices=[STILL],
        help="also run a reference tracker: still = the box never moves",
    )
    p.add_argument(
        "--results",
        action="append",
        default=[],
        metavar="DIR",
        help="saved results of other trackers, DIR/<tracker>/<seq>.txt (repeatable)",
    )
    p.add_argument("--sequences", nargs="+", default=[], metavar="SEQ", help="only these")
    p.add_argument("--out", default="work/eval", metavar="DIR", help="output folder")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="sequences at once: 0 one Ray task per CPU, 1 in this process",
    )
    p.add_argument("--device", default="cpu", help="torch device when --workers 1 (e.g. cuda)")
    p.add_argument(
        "--batch",
        type=int,
        default=8,
        metavar="N",
        help="with --workers 1: sequences a model tracks at once, one network pass per frame "
        "for all N (1 = one by one). Boxes are the same for any N; the seconds per frame "
        "(and FPS) are the batch's throughput shared by its sequences",
    )
    add_tracking_uri(p)
    p.set_defaults(run=_run_eval)


def model_names(items: list[str]) -> dict[str, str]:
    models = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = parse_spec(item).label, item
        if name in models:
            raise JobError(f"two models are named {name!r}; name them: --model NAME=PATH")
        models[name] = path
    return models


def local_models(models: dict[str, str], tracking_uri: str) -> dict[str, str]:
    """Name -> local weights file, fetching the MLflow ones (models:/, runs:/, run ids)."""
    if not any(is_remote(spec) for spec in models.values()):
        return models
    uri = default_tracking_uri(tracking_uri)
    return {name: str(resolve_model(spec, uri, DEFAULT_CACHE)) for name, spec in models.items()}


def _run_eval(args: argparse.Namespace) -> int:
    if args.device != "cpu" and args.workers != 1:
        raise JobError("--device other than cpu needs --workers 1")
    if args.batch < 1:
        raise JobError(f"--batch must be at least 1, got {args.batch}")
    request = EvalRequest(
        benchmark=args.benchmark,
        root=args.root,
        out=args.out,
        models=local_models(model_names(args.model), args.tracking_uri),
        baselines=args.baseline,
        results_dirs=args.results,
        sequences=args.sequences,
        workers=args.workers,
        device=args.device,
        batch=args.batch,
    )
    scores = evaluate(request)
    print(format_table(scores, got10k=args.benchmark == "got10k"))
    print(f"\nplots, metrics.json and results in {args.out}")
    return 0
