"""Where and how big: a profile names the Slurm resources a submitted job gets.

Profiles are YAML files in cluster/profiles/ (`--profile NAME`) or anywhere (`--profile
PATH`), read into this dataclass; `pul config show profile` explains every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PROFILES = Path(__file__).resolve().parent / "profiles"


@dataclass
class Profile:
    executor: Literal["slurm", "local"] = "slurm"
    """'slurm' submits with sbatch; 'local' runs the same job path as a process here."""
    partition: str = ""
    """Slurm partition (empty: the cluster's default)."""
    nodes: int = 1
    """Nodes of the allocation; one task (and one Ray node) per node."""
    gpus_per_node: int = 0
    """GPUs per node (Slurm --gpus-per-node); Ray Train runs one worker per GPU."""
    cpus_per_node: int = 2
    """CPUs of the one task on each node (Slurm --cpus-per-task); Ray gets all of them."""
    mem_gb: float = 0.0
    """Memory per node in GB (0: the partition's default)."""
    time_min: int = 60
    """Time limit in minutes; the job is signalled `signal_delay_s` before it, checkpoints
    and requeues itself."""
    account: str = ""
    """Slurm account to charge (empty: your default)."""
    qos: str = ""
    """Slurm quality of service (empty: the default)."""
    constraint: str = ""
    """Slurm node features, e.g. 'a100|h100' (empty: any node)."""
    sbatch: dict[str, str] = field(default_factory=dict)
    """Further sbatch options, e.g. {exclusive: '', reservation: 'lab'}."""
    setup: list[str] = field(default_factory=list)
    """Shell lines run before the job on every node (module load, venv activation)."""
    storage: str = "work/cluster"
    """Shared storage every node sees: job folders, logs, the Ray rendezvous file."""
    mlflow_uri: str = ""
    """MLflow tracking server of the jobs (exported as MLFLOW_TRACKING_URI; empty: inherit)."""
    python: str = ""
    """Python interpreter on the nodes (empty: the one running `pul submit`)."""
    signal_delay_s: int = 90
    """Seconds before the time limit at which Slurm signals the job to checkpoint and requeue."""
    ray_join_timeout_s: int = 180
    """How long node 0 waits for every node (and its GPUs) to join the Ray cluster."""
    ray_object_store_gb: float = 0.0
    """Ray object store per node in GB (0: Ray's default, 30% of the memory)."""

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.cpus_per_node < 1 or self.time_min < 1:
            raise ValueError("nodes, cpus_per_node and time_min must be at least 1")
        if self.gpus_per_node < 0 or self.mem_gb < 0 or self.ray_object_store_gb < 0:
            raise ValueError("gpus_per_node, mem_gb and ray_object_store_gb must be >= 0")
        if self.executor == "local" and self.nodes != 1:
            raise ValueError("the local executor runs one node; set nodes: 1")


def profile_path(name: str) -> Path:
    """A profile by name (cluster/profiles/NAME.yaml) or by path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return PROFILES / f"{name}.yaml"


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))
