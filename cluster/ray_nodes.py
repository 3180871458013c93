"""One Ray cluster per Slurm allocation: a Ray node per Slurm node, found by a rendezvous file.

Every task of the job (one per node) calls `run_on_ray_cluster`. Node 0 starts the Ray head
on free ports and writes its address to a rendezvous file in the job folder; the other nodes
wait for that file, join, and block until node 0 writes a done file. Node 0 waits until every
node and GPU has joined (naming the missing nodes on timeout), runs the job function against
the cluster (RAY_ADDRESS), then stops its head so the allocation ends cleanly.

Each Ray node runs as `ray start --block`, a child of the task: stopping it stops exactly
the processes it started (never `ray stop`, which would kill every Ray on the host).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


STATE_API_ENV = "RAY_API_SERVER_ADDRESS"
"""Ray's variable naming the dashboard its state API asks (as jobs.runtime sets it for a
local cluster; cluster may not import jobs)."""


class RayClusterError(Exception):
    """The Ray cluster of a job could not be formed."""


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def node_ip() -> str:
    """This node's address as the other nodes reach it (PUL_NODE_IP overrides)."""
    if os.environ.get("PUL_NODE_IP"):
        return os.environ["PUL_NODE_IP"]
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _per_node_ports() -> list[str]:
    """Every port a Ray node listens on, chosen free: several nodes may share a host."""
    flags = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ]
    return [item for flag in flags for item in (flag, str(free_port()))]


def use_token(token: str) -> None:
    """Token authentication with the job's own token, for this process and its children
    (every node gets it from the rendezvous file, readable by the job's owner only)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    # Ray reads both when it is imported (the job's code imported it before the token
    # existed): make this process read them again. Ray 2.60's own way (_enable_token_auth).
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def start_node(
    head_address: str | None, cpus: int, gpus: int, object_store_gb: float, log_file: Path
) -> tuple[subprocess.Popen, str]:
    """Start this node's Ray (the head when `head_address` is None); returns the process
    and the cluster address."""
    ip = node_ip()
    cmd = [_ray_cli(), "start", "--block", "--disable-usage-stats", "--node-ip-address", ip]
    cmd += ["--num-cpus", str(cpus), "--num-gpus", str(gpus), "--node-name", node_name()]
    cmd += _per_node_ports()
    if object_store_gb:
        cmd += ["--object-store-memory", str(int(object_store_gb * 1e9))]
    # Ray's state API, in this node's processes, is told where the dashboard is rather
    # than guessing from /tmp/ray/ray_current_cluster, which another cluster on the host
    # may have written (see jobs.runtime.start_local_ray: with a wrong guess, trials that
    # Tune stops keep their CPUs). The dashboard listens on the head only, where Ray
    # Train's placement-group cleaner runs.
    env = {key: value for key, value in os.environ.items() if key != STATE_API_ENV}
    if head_address is None:
        port, dashboard_port = free_port(), free_port()
        address = f"{ip}:{port}"
        cmd += ["--head", "--port", str(port), "--dashboard-host", "127.0.0.1"]
        cmd += ["--dashboard-port", str(dashboard_port)]
        cmd += ["--ray-client-server-port", str(free_port())]
        env[STATE_API_ENV] = f"http://127.0.0.1:{dashboard_port}"
    else:
        address = head_address
        cmd += ["--address", head_address]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    return process, address


def stop_node(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM `ray start --block`, which stops the Ray processes it started."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_port(address: str, process: subprocess.Popen, log_file: Path, timeout: float) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RayClusterError(f"Ray head exited with {process.returncode}; see {log_file}")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            time.sleep(0.5)
    raise RayClusterError(f"Ray head at {address} did not come up in {timeout:.0f} s")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def wait_for_nodes(
    expected: list[str], gpus_per_node: int, timeout: float, poll: float = 1.0
) -> list[dict[str, Any]]:
    """Block until every expected node (by name) and its GPUs are alive in the cluster."""
    import ray

    deadline = time.time() + timeout
    while True:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        names = {n.get("NodeName") for n in alive}
        gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in alive)
        missing = [name for name in expected if name not in names]
        if not missing and gpus >= gpus_per_node * len(expected):
            return alive
        if time.time() > deadline:
            have = f"{len(alive)} of {len(expected)} nodes, {gpus:g} GPUs"
            raise RayClusterError(
                f"Ray cluster incomplete after {timeout:.0f} s ({have}); missing nodes: "
                f"{', '.join(missing) or 'none'}"
                + ("" if not gpus_per_node else f"; expected {gpus_per_node} GPUs per node")
            )
        time.sleep(poll)


def run_on_ray_cluster(
    fn: Callable[[], Any],
    *,
    rank: int,
    nodes: list[str],
    folder: Path,
    attempt: str,
    cpus: int,
    gpus: int,
    object_store_gb: float = 0.0,
    join_timeout: float = 180.0,
) -> Any:
    """Run `fn` on node 0 with a Ray cluster over `nodes`; the other ranks serve as Ray nodes.

    `attempt` tells this run of the job from earlier ones (a requeued job writes new
    rendezvous files rather than reading stale ones).
    """
    rendezvous = folder / f"ray-{attempt}.json"
    done = folder / f"ray-{attempt}.done"
    log_file = folder / f"ray-{attempt}-node{rank}.log"
    if rank == 0:
        return _run_head(
            fn, nodes, rendezvous, done, log_file, cpus, gpus, object_store_gb, join_timeout
        )
    _serve_as_worker(rendezvous, done, log_file, cpus, gpus, object_store_gb, join_timeout)
    return None


def _run_head(fn, nodes, rendezvous, done, log_file, cpus, gpus, object_store_gb, join_timeout):
    import ray

    token = secrets.token_hex(32)
    use_token(token)
    process, address = start_node(None, cpus, gpus, object_store_gb, log_file)
    try:
        _wait_for_port(address, process, log_file, timeout=60)
        _write_json(rendezvous, {"address": address, "head": node_name(), "token": token})
        os.environ["RAY_ADDRESS"] = address
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        alive = wait_for_nodes(nodes, gpus, join_timeout)
        print(f"Ray cluster {address}: {len(alive)} nodes ({', '.join(nodes)})", flush=True)
        return fn()
    finally:
        _write_json(done, {"finished": time.time()})
        if ray.is_initialized():
            ray.shutdown()
        stop_node(process)


def _serve_as_worker(rendezvous, done, log_file, cpus, gpus, object_store_gb, join_timeout):
    deadline = time.time() + join_timeout
    while not rendezvous.exists():
        if time.time() > deadline:
            raise RayClusterError(f"no Ray head address in {rendezvous} after {join_timeout:.0f} s")
        time.sleep(0.5)
    head = json.loads(rendezvous.read_text())
    use_token(head["token"])
    address = head["address"]
    process, _ = start_node(address, cpus, gpus, object_store_gb, log_file)
    try:
        while not done.exists():
            if process.poll() is not None:
                raise RayClusterError(f"Ray node exited with {process.returncode}; see {log_file}")
            time.sleep(1.0)
    finally:
        stop_node(process)
