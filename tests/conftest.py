"""Shared fixtures: a real local Ray cluster, started once per test session, and torch on
one thread. Shared helpers that are not fixtures: tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import wait_ray_idle


def _start_local_ray():
    from jobs.runtime import start_local_ray

    # As connect_ray starts one, but workers' output stays in their log files: forwarded to
    # this process it would land, at any moment, in whatever a later test captures.
    start_local_ray(num_cpus=2, log_to_driver=False)


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

    A test that fails or times out mid-sweep leaves its trials' actors holding the CPUs;
    every later test's work would then wait behind them forever (a whole CI run was lost
    so, when the placement groups of stopped trials were never removed: fixed since, see
    tests/jobs/test_stopped_trials.py).
    """
    yield
    if "ray_local" not in request.fixturenames:
        return
    import ray

    if not ray.is_initialized():
        return
    if wait_ray_idle(ray, 30):  # actors being torn down give their CPUs back soon
        return
    ray.shutdown()
    _start_local_ray()


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
