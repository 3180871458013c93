"""Shared fixtures: a real local Ray cluster, started once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster on this machine's CPUs (not a mock); shut down at the end."""
    import ray

    from jobs.runtime import connect_ray

    connect_ray(num_cpus=2)
    yield ray
    ray.shutdown()
