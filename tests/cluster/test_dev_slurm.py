"""The dev Slurm cluster (cluster/dev/start.sh) behaves like the real thing.

Two nodes pul-n1/pul-n2 (2 CPUs, 2 fake GPUs each), partition debug, slurmdbd accounting,
requeue and QOS preemption. These tests pin what later tests (``pul submit``, preemption
and resume) rely on: srun across nodes, submitit results and job states, Slurm's refusal
message for an impossible GPU request, cancel, requeue and the preemption signal.
"""

from __future__ import annotations

import re

import pytest

from tests.cluster.conftest import TERMINAL, run, wait_until

pytestmark = pytest.mark.slurm

NODES = ["pul-n1", "pul-n2"]
# What Slurm 22.05 says when no node can ever satisfy a request (3 GPUs on 2-GPU nodes).
REFUSAL = "Requested node configuration is not available"


def _node_fields(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show node -o`` lines -> {node: {key: value}}."""
    nodes = {}
    for line in text.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "NodeName" in fields:
            nodes[fields["NodeName"]] = fields
    return nodes


def test_both_nodes_idle_with_two_gpus(dev_slurm):
    def show():
        return _node_fields(run(["scontrol", "show", "node", "-o"]).stdout)

    # Jobs cancelled at the end of an earlier session may still be completing (KillWait 5 s).
    wait_until(lambda: all(f["State"] == "IDLE" for f in show().values()), 30, "idle nodes")
    nodes = show()
    assert sorted(nodes) == NODES
    for name, f in nodes.items():
        assert f["State"] == "IDLE", (name, f["State"])
        assert f["Gres"] == "gpu:2", (name, f["Gres"])
        assert f["CPUTot"] == "2", (name, f["CPUTot"])
        assert "gres/gpu=2" in f["CfgTRES"], (name, f["CfgTRES"])
        assert f["Partitions"] == "debug", (name, f["Partitions"])


def test_two_node_job_runs_srun_on_both_nodes(dev_slurm, tmp_path):
    out = tmp_path / "out.txt"
    job_id = dev_slurm.sbatch(
        "-N2",
        "--ntasks-per-node=1",
        "-o",
        str(out),
        "--wrap",
        # single quotes: the task's shell expands the variables, not the batch script's
        "srun bash -c 'echo task=$SLURM_PROCID node=$SLURMD_NODENAME'",
    )
    assert dev_slurm.wait_finished(job_id) == "COMPLETED", out.read_text()
    text = out.read_text()
    assert sorted(re.findall(r"task=\d+ node=\S+", text)) == [
        "task=0 node=pul-n1",
        "task=1 node=pul-n2",
    ], text
    # sacct may say COMPLETED ~1 s before the allocation's NodeList reaches slurmdbd
    # (measured: "pul-n1" first, "pul-n[1-2]" 0.5-1.4 s later): wait for it.
    wait_until(
        lambda: (
            run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "NodeList"]).stdout.strip()
            == "pul-n[1-2]"
        ),
        15,
        "sacct's NodeList to name both nodes",
    )


def test_submitit_job_returns_its_value(dev_slurm, tmp_path):
    import submitit

    def work(x):
        import os

        return x * 2, os.environ["SLURM_JOB_PARTITION"]

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    assert executor.cluster == "slurm"
    executor.update_parameters(slurm_partition="debug", timeout_min=5)
    job = executor.submit(work, 21)
    dev_slurm.submitted.append(job.job_id)
    assert job.result() == (42, "debug")
    # result() returns as soon as the result pickle exists; job.state is submitit's cached
    # sacct answer and may lag behind (UNKNOWN/RUNNING) for a poll or two: force a refresh.
    wait_until(lambda: job.get_info(mode="force").get("State") == "COMPLETED", 30, "sacct")
    assert job.state == "COMPLETED"


def test_gpu_request_beyond_a_node_is_refused_by_sbatch(dev_slurm):
    proc = dev_slurm.sbatch("-N2", "--gres=gpu:3", "--wrap", "true", check=False)
    assert proc.returncode == 1
    assert f"sbatch: error: Batch job submission failed: {REFUSAL}" in proc.stderr


@pytest.mark.parametrize(
    "params", [{"slurm_gres": "gpu:3"}, {"gpus_per_node": 3}], ids=["gres", "gpus_per_node"]
)
def test_gpu_request_beyond_a_node_is_refused_by_submitit(dev_slurm, tmp_path, params, capsys):
    import submitit
    from submitit.core.utils import FailedJobError

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(slurm_partition="debug", nodes=2, timeout_min=5, **params)
    with pytest.raises(FailedJobError, match=REFUSAL) as err:
        executor.submit(print, "never runs")
    # submitit raises with sbatch's stderr as the message: what `pul submit` will show.
    assert str(err.value).startswith("sbatch: error: Batch job submission failed:")
    # ... and has already copied that stderr to the caller's sys.stderr, once.
    assert capsys.readouterr().err.count(REFUSAL) == 1


def test_scancel_is_reported_cancelled(dev_slurm):
    job_id = dev_slurm.sbatch("-o", "/dev/null", "--wrap", "sleep 300")
    dev_slurm.wait_running(job_id)
    run(["scancel", job_id])
    state = dev_slurm.wait_finished(job_id)
    assert state.startswith("CANCELLED"), state


def test_submitit_sees_a_cancel_as_cancelled_by_uid(dev_slurm, tmp_path):
    import time

    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(slurm_partition="debug", timeout_min=5)
    job = executor.submit(time.sleep, 300)
    dev_slurm.submitted.append(job.job_id)
    dev_slurm.wait_running(job.job_id)
    job.cancel()
    # sacct (and so submitit, which does not split it) says "CANCELLED by <uid>". sacct
    # lags squeue: it may still say PENDING/RUNNING for a moment after the cancel.
    state = wait_until(
        lambda: (s := job.get_info(mode="force").get("State", "")).startswith(TERMINAL) and s,
        30,
        "submitit to see the cancel",
    )
    assert state == "CANCELLED by 0"
    assert job.done()


def test_requeue_runs_the_job_again(dev_slurm, tmp_path):
    runs = tmp_path / "runs.txt"
    job_id = dev_slurm.sbatch(
        "-o",
        str(tmp_path / "out-%j.txt"),
        "--wrap",
        f'echo "restart=${{SLURM_RESTART_COUNT:-0}}" >> {runs}; sleep 2',
    )
    wait_until(lambda: runs.exists() and runs.read_text().strip(), 60, "the first run")
    run(["scontrol", "requeue", job_id])
    # A requeued job may start again cred_expire (10 s) later; the scheduler runs every 2 s.
    wait_until(lambda: len(runs.read_text().split()) >= 2, 90, "the second run")
    assert runs.read_text().split() == ["restart=0", "restart=1"]
    assert dev_slurm.wait_finished(job_id) == "COMPLETED"
    assert dev_slurm.sacct_state(job_id, duplicates=True) == ["REQUEUED", "COMPLETED"]


def test_preemption_signals_then_requeues(dev_slurm, tmp_path):
    """QOS high preempts QOS normal: the victim gets its --signal at once (submitit's
    USR2), SIGTERM after the QOS GraceTime (10 s), and goes back to the queue."""
    log = tmp_path / "victim.log"
    script = tmp_path / "victim.sh"
    script.write_text(
        "#!/bin/bash\n"
        f'echo "start restart=${{SLURM_RESTART_COUNT:-0}}" >> {log}\n'
        f"trap 'echo USR2 >> {log}' USR2\n"
        f"trap 'echo TERM >> {log}; exit 143' TERM\n"
        "for i in $(seq 1 1500); do sleep 0.2; done\n"
    )
    # The victim takes every CPU of both nodes, so the high-QOS job can only preempt.
    victim = dev_slurm.sbatch(
        "-N2", "--ntasks-per-node=1", "-c2", "--signal=B:USR2@60", "-o", "/dev/null", str(script)
    )
    wait_until(lambda: log.exists() and "start" in log.read_text(), 60, "the victim to start")
    high = dev_slurm.sbatch("--qos=high", "-N1", "-c2", "-o", "/dev/null", "--wrap", "true")
    assert dev_slurm.wait_finished(high, timeout=90) == "COMPLETED"
    lines = log.read_text().split("\n")
    assert lines[:3] == ["start restart=0", "USR2", "TERM"], lines
    assert dev_slurm.sacct_state(victim, duplicates=True)[0] == "PREEMPTED"
    assert dev_slurm.squeue_state(victim) in {"PENDING", "RUNNING", "COMPLETING"}
