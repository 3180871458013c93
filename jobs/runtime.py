"""Connecting a job to Ray: the cluster a launcher named, or an embedded local one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import ray

log = logging.getLogger(__name__)


def connect_ray(num_cpus: int | None = None) -> None:
    """Join the cluster in RAY_ADDRESS (set by `pul submit` on Slurm), else start a local one.

    A local cluster uses this machine's CPUs unless `num_cpus` says otherwise. Calling it
    again in the same process reuses the connection.
    """
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    else:
        # The dashboard stays on: without it Ray Train's placement-group cleaner floods the
        # log with state-API errors.
        # address="local": a new cluster even when a `ray start` on this host (e.g. a job
        # of `pul submit --profile local`) left its address behind for ray.init to find
        ray.init(
            address="local",
            num_cpus=num_cpus,
            logging_level=logging.WARNING,
            configure_logging=False,
        )


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_bounded(
    remote: ray.remote_function.RemoteFunction,
    calls: Sequence[tuple],
    in_flight_max: int,
    on_done: Callable[[int, Any], None] = lambda index, result: None,
) -> None:
    """Run `remote.remote(*calls[i])` for every i with at most `in_flight_max` at once.

    Bounded, so that a set of thousands of shards does not put thousands of tasks (and
    their arguments) into the object store at once. `on_done(i, result)` is called as each
    finishes, in completion order. The first task error is raised here; what finished
    tasks wrote stays, so a rerun resumes from it.
    """
    queue, running = list(range(len(calls))), {}
    while queue or running:
        while queue and len(running) < in_flight_max:
            index = queue.pop(0)
            running[remote.remote(*calls[index])] = index
        ready, _ = ray.wait(list(running), num_returns=1)
        index = running.pop(ready[0])
        on_done(index, ray.get(ready[0]))
