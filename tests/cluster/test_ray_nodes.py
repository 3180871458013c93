"""The Ray-on-Slurm pieces that need no Slurm: the wait for every node, on a real local Ray."""

from __future__ import annotations

import pytest
import ray

from cluster.ray_nodes import RayClusterError, wait_for_nodes


@pytest.mark.ray
def test_waiting_for_nodes_names_the_missing_ones(ray_local):
    here = [n["NodeName"] for n in ray.nodes() if n["Alive"]]
    assert len(wait_for_nodes(here, gpus_per_node=0, timeout=5)) == 1
    with pytest.raises(RayClusterError) as err:
        wait_for_nodes([*here, "gpu-node-17"], gpus_per_node=0, timeout=1.5, poll=0.2)
    message = str(err.value)
    assert "1 of 2 nodes" in message and "missing nodes: gpu-node-17" in message


@pytest.mark.ray
def test_waiting_for_gpus_that_never_join_fails(ray_local):
    here = [n["NodeName"] for n in ray.nodes() if n["Alive"]]
    with pytest.raises(RayClusterError, match="0 GPUs.*expected 2 GPUs per node"):
        wait_for_nodes(here, gpus_per_node=2, timeout=1.0, poll=0.2)
