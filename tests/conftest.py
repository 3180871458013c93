"""Shared fixtures: a real local Ray cluster, started once per test session."""

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
