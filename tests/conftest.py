"""Shared fixtures: a real local Ray cluster, started once per test session, and torch on
one thread. Shared helpers that are not fixtures: tests/helpers.py."""

from __future__ import annotations

import time

import pytest


def _start_local_ray():
    import logging

    import ray

    # As connect_ray starts one, but workers' output stays in their log files: forwarded to
    # this process it would land, at any moment, in whatever a later test captures.
    ray.init(
        address="local",
        num_cpus=2,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster on this machine's CPUs (not a mock); shut down at the end."""
    import ray

    _start_local_ray()
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _ray_left_idle(request):
    """After a test on the shared cluster: every CPU free and no placement group left
    (held or still asked for), else a new cluster.

    A test that fails or times out mid-sweep leaves its trials' actors holding the CPUs,
    and a finished sweep has been seen to leave a trial behind whose trainer still waits
    for a placement group; every later test's work would then wait behind them forever (a
    whole CI run was lost so).
    """
    yield
    if "ray_local" not in request.fixturenames:
        return
    import ray

    if not ray.is_initialized():
        return
    deadline = time.monotonic() + 30  # actors being torn down give their CPUs back soon
    while time.monotonic() < deadline:
        if _ray_idle(ray):
            return
        time.sleep(0.5)
    ray.shutdown()
    _start_local_ray()


def _ray_idle(ray) -> bool:
    from ray.util import placement_group_table

    if any(group["state"] != "REMOVED" for group in placement_group_table().values()):
        return False
    return ray.available_resources().get("CPU", 0) >= ray.cluster_resources().get("CPU", 0)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module's tests (`pytestmark = usefixtures("one_thread")`).

    One thread is what a Ray task gets; on 2 cores it is as fast for these small products,
    and much faster when another job shares the machine.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
