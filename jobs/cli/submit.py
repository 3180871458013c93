"""`pul submit JOB --profile NAME ...` and `pul jobs status|logs|cancel`: jobs on Slurm."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import time
from collections.abc import Callable

from cluster.launch import SubmitError, submit
from cluster.profile import Profile, known_profiles, profile_path
from cluster.records import all_records, cancel, find, log_path, remember, state
from jobs.cli.args import HelpFormatter
from jobs.config import ConfigError, load_config
from jobs.errors import JobError

JOBS: dict[str, list[str]] = {
    "pack": ["shards", "pack"],
    "supervised": ["train", "supervised"],
    "bd": ["train", "bd"],
    "mine": ["mine"],
    "tc": ["train", "tc"],
    "pipeline": ["pipeline"],
    "demo": ["demo"],
    "eval": ["eval"],
    "track": ["track"],
    "tune": ["tune"],
}
"""`pul submit` job name -> the `pul` subcommand it runs on the allocation."""

SUBMIT_HELP = """\
Run a pul job on a Slurm allocation (or, with a local profile, as a process here). Every
node of the allocation starts Ray; node 0 runs the job against that Ray cluster, so training
workers spread over all nodes' GPUs. On a time limit or preemption the job requeues itself
and continues from its checkpoints. Everything after JOB is the job's own arguments, except
`--profile`, `--name` and `profile.KEY=VALUE` (a profile field for this submission).

examples:
  pul submit bd --profile dev --data work/clips --run-dir work/cluster/runs/bd train.steps=50
  pul submit pipeline --profile gpu-example --config configs/demo.yaml --work /shared/w
  pul submit bd --profile dev profile.nodes=1 profile.time_min=10 --data ... --run-dir ...
"""


def add_commands(commands: argparse._SubParsersAction, entry: Callable[..., int]) -> None:
    """`entry` is the function every node of a submitted job runs (the `pul` command line)."""
    p = commands.add_parser(
        "submit",
        formatter_class=HelpFormatter,
        help="submit a job to Slurm (submitit), with Ray over the allocated nodes",
        description=SUBMIT_HELP,
    )
    p.add_argument("job", choices=sorted(JOBS), help="the job to run")
    p.add_argument(
        "--profile", help=f"profile name ({', '.join(known_profiles())}) or a YAML path (required)"
    )
    p.add_argument("--name", default="", help="Slurm job name (default: pul-JOB)")
    p.add_argument("job_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=_run_submit, entry=entry)

    jobs = commands.add_parser(
        "jobs",
        formatter_class=HelpFormatter,
        help="status, logs and cancellation of submitted jobs",
        description="Jobs submitted with `pul submit` (remembered in $PUL_HOME/jobs.jsonl, "
        "default ~/.pul).\n\nexamples:\n  pul jobs status\n  pul jobs logs 42 --follow\n"
        "  pul jobs cancel 42",
    )
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    status = sub.add_parser("status", help="state of one job, or of the recent ones")
    status.add_argument("job_id", nargs="?", help="job id (default: the 20 most recent jobs)")
    status.set_defaults(run=_run_status)
    logs = sub.add_parser("logs", help="print a job's log")
    logs.add_argument("job_id")
    logs.add_argument("--task", type=int, default=0, help="task (node) index; 0 runs the job")
    logs.add_argument("--err", action="store_true", help="stderr instead of stdout")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    logs.set_defaults(run=_run_logs)
    stop = sub.add_parser("cancel", help="cancel a job (scancel)")
    stop.add_argument("job_id")
    stop.set_defaults(run=_run_cancel)


def split_submission(args: list[str]) -> tuple[list[str], list[str]]:
    """Separate `profile.KEY=VALUE` overrides from the job's own arguments."""
    profile = [a.removeprefix("profile.") for a in args if a.startswith("profile.") and "=" in a]
    rest = [a for a in args if not (a.startswith("profile.") and "=" in a)]
    return profile, rest


def load_profile(name: str, overrides: list[str]) -> Profile:
    path = profile_path(name)
    if not path.is_file():
        raise ConfigError(f"no profile {name!r}: known profiles are {', '.join(known_profiles())}")
    return load_config(Profile, path, None, overrides)


def _run_submit(args: argparse.Namespace) -> int:
    # --profile and --name may come after JOB, among the job's own arguments
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--profile", default=args.profile)
    pre.add_argument("--name", default=args.name)
    ours, job_args = pre.parse_known_args(list(args.job_args))
    if not ours.profile:
        raise JobError("pul submit needs --profile NAME (" + ", ".join(known_profiles()) + ")")
    overrides, job_args = split_submission(job_args)
    profile = load_profile(ours.profile, overrides)
    argv = [*JOBS[args.job], *job_args]

    try:
        record = submit(args.entry, argv, profile, ours.name or f"pul-{args.job}")
    except SubmitError as err:
        raise JobError(str(err)) from None
    remember(record)
    where = "Slurm" if record.executor == "slurm" else "this machine (local profile)"
    print(f"submitted job {record.job_id} to {where}: pul {shlex.join(argv)}")
    print(
        f"  nodes {profile.nodes}, GPUs per node {profile.gpus_per_node}, "
        f"time limit {profile.time_min} min"
    )
    print(f"  stdout {record.stdout}")
    print(f"  stderr {record.stderr}")
    print(
        f"follow it: pul jobs logs {record.job_id} --follow   |   pul jobs status {record.job_id}"
    )
    return 0


def _record(job_id: str):
    record = find(job_id)
    if record is None:
        raise JobError(f"no job {job_id} was submitted from here (see `pul jobs status`)")
    return record


def _run_status(args: argparse.Namespace) -> int:
    records = [_record(args.job_id)] if args.job_id else all_records()[-20:]
    if not records:
        print("no jobs submitted yet")
        return 0
    for record in records:
        when = dt.datetime.fromtimestamp(record.submitted_at).strftime("%Y-%m-%d %H:%M")
        print(
            f"{record.job_id:>8}  {state(record):<12} {record.executor:<6} {when}  "
            f"pul {shlex.join(record.argv)}"
        )
    if args.job_id:
        print(f"  logs: {records[0].stdout} (and .err; other nodes: --task N)")
    return 0


def _run_logs(args: argparse.Namespace) -> int:
    record = _record(args.job_id)
    path = log_path(record, args.task, "err" if args.err else "out")
    shown = 0
    while True:
        if path.exists():
            text = path.read_text(errors="replace")
            print(text[shown:], end="", flush=True)
            shown = len(text)
        elif not args.follow:
            raise JobError(f"job {record.job_id} has no log yet at {path} (still pending?)")
        if not args.follow or state(record).split()[0] in FINAL_STATES:
            return 0
        time.sleep(2.0)


FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def _run_cancel(args: argparse.Namespace) -> int:
    record = _record(args.job_id)
    cancel(record)
    print(f"cancelled job {record.job_id}")
    return 0
