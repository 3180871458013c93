"""Stopping long commands with real signals: nothing they started outlives them, they say
what they kept in one line, and a stopped training run resumes from its newest checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jobs.tracking.server import free_port, healthy
from pul.weights import load_weights
from tests.helpers import pul_command
from tests.jobs.test_train import TINY, _run_info
from tests.shards.clip_fixtures import make_otb_set

REPO = Path(__file__).resolve().parents[2]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_serve(tmp_path: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    """`pul mlflow serve` in a child process, returned once it printed the tracking URI."""
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "mlflow",
        "serve",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
    ]
    child = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    deadline = time.monotonic() + 240  # ~5 s idle; much longer on a busy 2-core machine
    while time.monotonic() < deadline and not any("export" in line for line in lines):
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line)
    assert f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n" in lines, lines
    return child, lines


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_mlflow_serve_leaves_no_server_behind(tmp_path, sig):
    port = free_port()
    child, _ = start_serve(tmp_path, port)
    try:
        servers = children_of(child.pid)
        assert len(servers) == 1  # `mlflow server`, leading a process group of its own
        group = servers[0]
        assert os.getpgid(group) == group
        members = group_members(group)
        assert len(members) >= 2, members  # mlflow server and its uvicorn
        assert healthy(f"http://127.0.0.1:{port}")

        os.kill(child.pid, sig)
        code = child.wait(timeout=60)
        # SIGTERM: the command stops the server itself and exits normally. SIGKILL: the
        # kernel's parent-death signal tells the server to stop.
        deadline = time.monotonic() + (5 if sig == signal.SIGTERM else 60)
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(group) == []
        assert not port_open(port)
        output = child.stdout.read()
        if sig == signal.SIGTERM:
            assert code == 0
            lines = [line for line in output.splitlines() if "stopping the MLflow server" in line]
            assert lines == [
                f"stopping the MLflow server (SIGTERM); its runs and models stay in "
                f"sqlite:///{tmp_path / 'mlflow.db'}, artifacts in {tmp_path / 'artifacts'}"
            ]
        else:
            assert code == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        for pid in group_members(group) if "group" in locals() else []:
            os.kill(pid, signal.SIGKILL)


# --- stopping a training run ----------------------------------------------------------


@pytest.fixture(scope="module")
def labeled_clips(tmp_path_factory) -> Path:
    """As tests/jobs/test_train.py's: 3 labeled videos of 16 frames, clips of 8."""
    from jobs.pack import pack
    from shards.pack_config import PackConfig

    root = tmp_path_factory.mktemp("stopping")
    src = make_otb_set(root / "otb", videos=3, frames=16, size=(160, 120))
    pack(PackConfig(sources=[str(src)], workers=1, clip_len=8), root / "clips", ["t"], False)
    return root / "clips"


STEPS = 400  # far more than the test waits for: the run is always stopped mid-way
RAY_LINE = re.compile(r"^(\x1b\[\d+m)?\(\w+ pid=\d+")
STOPPED = re.compile(
    r"^pul: stopped at step (\d+); checkpoint of step (\d+) kept in (\S+); "
    r"rerun the same command to resume$"
)


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid`: the driver started with start_new_session, and the
    local Ray cluster (GCS, raylet, workers) it started."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def saved_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Step -> folder of every checkpoint whose files load (read as a user would, without
    the runner's own bookkeeping)."""
    found = {}
    for folder in (run_dir / "ray" / "train").glob("checkpoint_*"):
        try:
            state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
            load_weights(folder / "model.pt")
        except Exception:  # being written, or not a checkpoint folder
            continue
        found[int(state["step"])] = folder
    return found


def start_training(run_dir: Path, clips: Path, env: dict, ignore_sigint: bool = False):
    argv = ["train", "supervised", "--data", str(clips), "--run-dir", str(run_dir)]
    argv += [f"train.steps={STEPS}", "train.checkpoint_every=4", "train.cpus_per_worker=0.5"]
    argv += ["train.max_failures=0", *TINY]
    # a file, not a pipe: Ray forwards its workers' output, which would fill a pipe unread
    log = open(run_dir.parent / f"{run_dir.name}-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115

    def preexec() -> None:
        # ignored: as a non-interactive shell starts a job with `&`; else as a terminal's
        # foreground job has it, whatever this test process inherited (a test run started
        # in the background ignores SIGINT, and its children would inherit that)
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)

    child = subprocess.Popen(
        pul_command(*argv),
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=log,
        preexec_fn=preexec,
    )
    return child, log


def wait_for(child: subprocess.Popen, ready, timeout: float, what: str, poll=0.2) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert child.poll() is None, f"training ended ({child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(poll)


def stop(child: subprocess.Popen, log, sig: int, to_group: bool) -> tuple[int, str]:
    """Send `sig`; the exit status and the output once the command has ended."""
    (os.killpg if to_group else os.kill)(child.pid, sig)
    child.wait(timeout=120)
    log.seek(0)
    return child.returncode, log.read()


def assert_stopped_cleanly(child, code, err, expected_code, run_dir) -> int:
    """The exit status, the one line, nothing of the run left running; the kept step."""
    assert code == expected_code, err[-3000:]
    ours = [line for line in err.splitlines() if line.startswith("pul:")]
    assert len(ours) == 1, err[-3000:]
    match = STOPPED.match(ours[0])
    assert match, ours[0]
    reached, kept, folder = int(match[1]), int(match[2]), match[3]
    assert folder == str(run_dir.resolve())
    newest = max(saved_checkpoints(run_dir))
    assert kept == newest and reached >= kept and kept % 4 == 0
    # the driver's own output (Ray prefixes what it forwards from its processes "(Name pid=N)")
    driver = [line for line in err.splitlines() if not RAY_LINE.match(line)]
    assert not any("Traceback" in line for line in driver), "\n".join(driver[-40:])
    deadline = time.monotonic() + 30
    while session_members(child.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert session_members(child.pid) == []  # no Ray worker, raylet or GCS of the run left
    for worker in json.loads((run_dir / "workers.json").read_text()):  # each training rank
        assert not alive(worker["pid"]), worker
    return kept


def assert_each_step_logged_once(run_dir: Path, resumed_at: list[int]) -> None:
    client, run_id = _run_info(run_dir)
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(len(steps)))  # every step once, none twice, none missing
    resumed = [int(m.value) for m in client.get_metric_history(run_id, "resumed_at_step")]
    assert resumed == resumed_at
    assert client.get_run(run_id).info.status == "KILLED"


@pytest.mark.slow
@pytest.mark.ray
def test_ctrl_c_stops_training_and_the_rerun_resumes_from_the_newest_checkpoint(
    labeled_clips, tmp_path
):
    run_dir = tmp_path / "runs" / "sup"
    run_dir.parent.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    child, log = start_training(run_dir, labeled_clips, env)
    try:
        wait_for(child, lambda: len(saved_checkpoints(run_dir)) >= 2, 240, "2 checkpoints")
        # Ctrl-C: SIGINT to the terminal's foreground group, the driver and the Ray
        # processes it started with it
        code, err = stop(child, log, signal.SIGINT, to_group=True)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    kept = assert_stopped_cleanly(child, code, err, 130, run_dir)

    rerun, log = start_training(run_dir, labeled_clips, env)
    try:
        wait_for(rerun, lambda: max(saved_checkpoints(run_dir)) > kept, 240, "a new checkpoint")
        code, err = stop(rerun, log, signal.SIGTERM, to_group=False)
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
    assert_stopped_cleanly(rerun, code, err, 143, run_dir)
    # the rerun trained from the newest checkpoint on: step `kept` is its first
    assert_each_step_logged_once(run_dir, resumed_at=[kept])


@pytest.mark.slow
@pytest.mark.ray
def test_sigterm_stops_a_driver_that_ignores_sigint(labeled_clips, tmp_path):
    run_dir = tmp_path / "runs" / "sup"
    run_dir.parent.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    child, log = start_training(run_dir, labeled_clips, env, ignore_sigint=True)
    try:
        wait_for(child, lambda: len(saved_checkpoints(run_dir)) >= 2, 240, "2 checkpoints")
        # an ignored SIGINT stays ignored (the launcher asked for it): training goes on
        os.kill(child.pid, signal.SIGINT)
        before = max(saved_checkpoints(run_dir))
        wait_for(child, lambda: max(saved_checkpoints(run_dir)) > before, 120, "a checkpoint")
        code, err = stop(child, log, signal.SIGTERM, to_group=False)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    kept = assert_stopped_cleanly(child, code, err, 143, run_dir)

    rerun, log = start_training(run_dir, labeled_clips, env)
    try:
        wait_for(rerun, lambda: max(saved_checkpoints(run_dir)) > kept, 240, "a new checkpoint")
        code, err = stop(rerun, log, signal.SIGINT, to_group=False)
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
    assert_stopped_cleanly(rerun, code, err, 130, run_dir)
    assert_each_step_logged_once(run_dir, resumed_at=[kept])


def session_killed_when(argv: list[str], ready, timeout: float, env: dict, log: Path) -> None:
    """Run `pul ARGV...` in a new session and SIGKILL every process of the session at once
    (the driver, the Ray cluster, the training workers) as soon as `ready()` holds."""
    with open(log, "w") as sink:
        child = subprocess.Popen(
            pul_command(*argv), env=env, start_new_session=True, stdout=sink, stderr=sink
        )
        try:
            wait_for(child, ready, timeout, "the moment to kill", poll=0.05)
        finally:
            while members := session_members(child.pid):
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            child.wait()


@pytest.mark.slow
@pytest.mark.ray
def test_a_run_killed_before_ray_registers_its_newest_checkpoint_resumes_from_that_one(
    labeled_clips, tmp_path
):
    """Ray Train records a checkpoint in its snapshot a while after the checkpoint is saved
    (once every rank has reported it); a run killed in between must not fall back to the
    one before, which would train and log those steps a second time."""
    run_dir = tmp_path / "runs" / "sup"
    argv = ["train", "supervised", "--data", str(labeled_clips), "--run-dir", str(run_dir)]
    argv += ["train.steps=40", "train.checkpoint_every=4", "train.cpus_per_worker=0.5", *TINY]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    snapshot = run_dir / "ray" / "train" / "checkpoint_manager_snapshot.json"
    seen: dict[str, int] = {}  # folder -> polls it has been whole and unregistered for

    def saved_but_unregistered() -> bool:
        try:
            registered = {
                entry["checkpoint_dir_name"]
                for entry in json.loads(snapshot.read_text())["checkpoint_results"]
            }
        except (OSError, ValueError, KeyError):
            return False  # nothing registered yet: the first checkpoint is no test
        for folder in saved_checkpoints(run_dir).values():
            if folder.name not in registered:
                seen[folder.name] = seen.get(folder.name, 0) + 1
                if seen[folder.name] >= 2:  # whole for a while, not just being written
                    return True
        return False

    session_killed_when(argv, saved_but_unregistered, 240, env, tmp_path / "first.log")
    newest = max(saved_checkpoints(run_dir))
    registered = [
        int(entry["metrics"]["step"])
        for entry in json.loads(snapshot.read_text())["checkpoint_results"]
    ]
    assert newest > max(registered)  # the case under test: Ray's record is behind

    rerun = subprocess.run(pul_command(*argv), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    client, run_id = _run_info(run_dir)
    assert [int(m.value) for m in client.get_metric_history(run_id, "resumed_at_step")] == [newest]
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(40))  # every step logged once
    assert client.get_run(run_id).info.status == "FINISHED"
