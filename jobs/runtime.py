"""Connecting a job to Ray: the cluster a launcher named, or an embedded local one."""

from __future__ import annotations

import logging
import os

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
