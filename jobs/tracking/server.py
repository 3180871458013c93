"""A real MLflow tracking server as a child process: start, wait for /health, stop.

`serving(...)` is what `pul mlflow serve` runs in the foreground, and what tests (and the
Slurm tests) use to get a server for the length of a `with` block:

    with serving("sqlite:///work/runs/mlflow.db", Path("work/runs/mlartifacts")) as uri:
        ...  # uri == "http://127.0.0.1:5000"

One worker and no job execution keep it to about 0.5 GB and a few seconds to start.

The server (`mlflow server`, which starts uvicorn) runs in a session and process group of
its own, and the whole group is ended when the block ends, whatever ends it: an error, a
stop signal turned into an exception (`jobs.stopping`), or interpreter exit (atexit). If
this process is killed outright (SIGKILL), the kernel sends the server SIGTERM (Linux's
parent-death signal) and it stops uvicorn itself.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from jobs.errors import JobError

START_TIMEOUT = 90.0
"""Seconds to wait for /health (about 5 s on an idle 2-core machine)."""
STOP_TIMEOUT = 15.0
"""Seconds between SIGTERM and SIGKILL."""
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PR_SET_PDEATHSIG = 1


class ServerError(JobError):
    """The server could not be started (port taken, bad store URI, ...)."""


def server_command(
    backend_uri: str, artifacts: Path, host: str, port: int, allowed_hosts: str = ""
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if allowed_hosts:
        # the flag replaces MLflow's default list: keep localhost and private IPs allowed
        from mlflow.server.security_utils import get_default_allowed_hosts

        command += ["--allowed-hosts", ",".join([*get_default_allowed_hosts(), allowed_hosts])]
    return command


def client_uri(host: str, port: int) -> str:
    """The URI clients use: the bound address, or this machine's name when bound to all."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}"


@contextlib.contextmanager
def serving(
    backend_uri: str,
    artifacts: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    log_file: Path | None = None,
    allowed_hosts: str = "",
    timeout: float = START_TIMEOUT,
) -> Iterator[str]:
    """Run `mlflow server` until the block ends; yields the tracking URI once /health is ok.

    The server's output goes to `log_file` (default: mlflow-server.log beside `artifacts`);
    its last line is in the error when it does not come up.
    """
    artifacts = Path(artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file) if log_file else artifacts.parent / "mlflow-server.log"
    if _port_taken(host, port):
        raise ServerError(f"port {port} on {host} is already in use; choose another --port")
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # the server is the store, not a client of one
    with open(log_file, "ab") as log:
        child = subprocess.Popen(
            server_command(backend_uri, artifacts, host, port, allowed_hosts),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stop() ends its workers too
            preexec_fn=_die_with_parent,
        )
    cleanup = functools.partial(stop, child)
    atexit.register(cleanup)  # a sys.exit() or an uncaught error in the block
    try:
        local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        _wait_healthy(child, local, log_file, timeout)
        yield client_uri(host, port)
    finally:
        stop(child)
        atexit.unregister(cleanup)


def _die_with_parent() -> None:
    """In the server's process, before exec: SIGTERM it when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_taken(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((probe, port)) == 0


def healthy(uri: str, timeout: float = 2.0) -> bool:
    """Whether the server at `uri` answers /health with 200 now."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_healthy(child: subprocess.Popen, uri: str, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ServerError(
                f"mlflow server exited with status {child.returncode} ({_last_line(log_file)}; "
                f"log: {log_file})"
            )
        if healthy(uri):
            return
        time.sleep(0.5)
    raise ServerError(f"mlflow server at {uri} not healthy after {timeout:.0f} s (log: {log_file})")


def stop(child: subprocess.Popen) -> None:
    """SIGTERM the server's process group (mlflow server and its uvicorn), SIGKILL what
    lingers; returns once no process of the group is left, so its port is free."""
    group = child.pid  # start_new_session: the server leads a group of its own
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)  # reaps the leader, so it leaves the group
            if child.poll() is not None and not _group_alive(group):
                return


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now belongs to someone else's group: ours is gone
        return False
    return True


def _last_line(log_file: Path) -> str:
    lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


def free_port() -> int:
    """A TCP port nobody listens on now (for tests and ad-hoc servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
