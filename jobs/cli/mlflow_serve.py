"""`pul mlflow serve`: an MLflow tracking server for jobs on other machines (or Slurm)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from jobs.cli.args import HelpFormatter
from jobs.errors import JobError
from jobs.stopping import Stopped, stop_signals_raise
from jobs.tracking.registry import DEFAULT_WORK
from jobs.tracking.server import ServerError, healthy, serving


def add_command(commands: argparse._SubParsersAction) -> None:
    mlflow = commands.add_parser(
        "mlflow",
        formatter_class=HelpFormatter,
        help="the MLflow tracking server",
    )
    sub = mlflow.add_subparsers(dest="mlflow_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "serve",
        formatter_class=HelpFormatter,
        help="run an MLflow tracking server in the foreground",
        description="Start `mlflow server` (one worker) on the store the jobs use by default, "
        "print the MLFLOW_TRACKING_URI to export, and serve until Ctrl-C. Jobs, `pul models` "
        "and `pul eval --model models:/...` then log to and read from it; the UI is at the "
        "same address.\n\nexamples:\n"
        "  pul mlflow serve\n"
        "  pul mlflow serve --host 0.0.0.0 --port 5001 --allowed-hosts 'node*,10.*'",
    )
    p.add_argument(
        "--backend-store-uri",
        default=f"sqlite:///{DEFAULT_WORK}/mlflow.db",
        metavar="URI",
        help="where runs and the registry live",
    )
    p.add_argument(
        "--artifacts-destination",
        default=str(DEFAULT_WORK / "mlartifacts"),
        metavar="DIR",
        help="where the server keeps the artifacts it receives",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument(
        "--allowed-hosts",
        default="",
        metavar="LIST",
        help="Host headers to accept besides localhost and private IPs (MLflow's default), "
        "comma-separated, wildcards allowed: set it when clients address this machine by name",
    )
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise JobError(f"--port must be a TCP port, 1 to 65535, got {args.port}")
    store = args.backend_store_uri
    if store.startswith("sqlite:///"):
        Path(store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    artifacts = Path(args.artifacts_destination)
    log = artifacts.resolve().parent / "mlflow-server.log"
    # Ctrl-C, SIGTERM and SIGHUP end the block through serving()'s `finally`, which ends the
    # server's whole process group (mlflow server and uvicorn) and frees the port.
    up = False
    try:
        with (
            stop_signals_raise(),
            serving(
                store, artifacts, args.host, args.port, allowed_hosts=args.allowed_hosts
            ) as uri,
        ):
            up = True
            print(f"MLflow server on {store}, artifacts in {artifacts}, log in {log}")
            print(f"export MLFLOW_TRACKING_URI={uri}")
            print("Ctrl-C stops it", flush=True)
            local = f"http://127.0.0.1:{args.port}" if args.host in ("0.0.0.0", "::") else uri
            _watch(local, log)
    except Stopped as stopped:
        if up:
            print(
                f"stopping the MLflow server ({stopped}); its runs and models stay in "
                f"{store}, artifacts in {artifacts}",
                flush=True,
            )
        else:
            print(f"pul: stopped ({stopped}) before the MLflow server was up", file=sys.stderr)
    return 0


def _watch(uri: str, log: Path, every: float = 5.0) -> None:
    """Block while the server answers; raise when three checks in a row get no answer."""
    misses = 0
    while misses < 3:
        time.sleep(every)
        misses = 0 if healthy(uri) else misses + 1
    raise ServerError(f"the MLflow server at {uri} stopped answering (see {log})")
