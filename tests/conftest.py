"""Shared fixtures: a real local Ray cluster, started once per test session, and torch on
one thread. Shared helpers that are not fixtures: tests/helpers.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster on this machine's CPUs (not a mock); shut down at the end."""
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
    yield ray
    ray.shutdown()


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
