"""Connecting a job to Ray: the cluster a launcher named, or an embedded local one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import ray

from jobs.tracking.server import free_port

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
        start_local_ray(num_cpus)


STATE_API_ENV = "RAY_API_SERVER_ADDRESS"
"""Where Ray's state API (in every process of the cluster) finds the cluster's dashboard."""


def start_local_ray(num_cpus: int | None = None, log_to_driver: bool = True) -> None:
    """Start a new Ray cluster on this machine, with its dashboard, and connect to it.

    The dashboard stays on and every process of the cluster is told where it is: Ray
    Train's placement-group cleaner, the detached actor that removes the workers'
    placement group of a run whose controller died (a trial Tune stopped), asks the state
    API whether the controller is alive. In a worker, the state API guesses the cluster:
    RAY_ADDRESS, else /tmp/ray/ray_current_cluster (left by the last `ray start` on this
    host, perhaps long gone), else the one GCS process on the host. A stale file or a
    second cluster on the host sends it elsewhere; the cleaner gives up, and every trial
    that Tune stopped keeps its CPUs until the cluster ends (later trials then wait
    forever). Naming the dashboard in the environment the cluster's processes inherit
    removes the guess.
    """
    port = free_port()
    # set while ray.init starts the cluster's processes, which keep it; not left behind
    # for this process's own children (a `ray start` of theirs would ask this dashboard)
    before = os.environ.get(STATE_API_ENV)
    os.environ[STATE_API_ENV] = f"http://127.0.0.1:{port}"
    try:
        # address="local": a new cluster even when a `ray start` on this host (e.g. a job
        # of `pul submit --profile local`) left its address behind for ray.init to find
        context = ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=port,
            log_to_driver=log_to_driver,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    finally:
        if before is None:
            os.environ.pop(STATE_API_ENV, None)
        else:
            os.environ[STATE_API_ENV] = before
    if context.dashboard_url and not context.dashboard_url.endswith(f":{port}"):
        # taken between free_port and the dashboard's bind: Ray chose another port
        log.warning(
            "Ray's dashboard is at %s, not port %d: trials that Tune stops may keep their "
            "CPUs until the cluster ends",
            context.dashboard_url,
            port,
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
