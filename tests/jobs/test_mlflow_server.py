"""A real MLflow tracking server: `serving(...)`, `pul mlflow serve`, and the registry over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from jobs.tracking.registry import register_tracker
from jobs.tracking.runs import experiment_id
from jobs.tracking.server import ServerError, free_port, healthy, serving
from pul.models import ModelConfig, build_model
from pul.weights import load_weights, save_weights
from tests.helpers import default_sigint, run_cli


def test_register_list_and_pull_through_a_server(tmp_path, capsys):
    port = free_port()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    torch.manual_seed(1)
    cfg = ModelConfig(width=0.25)
    weights = save_weights(build_model(cfg), cfg, tmp_path / "model.pt")
    with serving(store, tmp_path / "artifacts", port=port) as uri:
        assert uri == f"http://127.0.0.1:{port}" and healthy(uri)
        client = MlflowClient(uri)
        run_id = client.create_run(experiment_id(client, "pul-test", uri)).info.run_id
        name, version = register_tracker(
            weights,
            tracking_uri=uri,
            run_id=run_id,
            metrics={"auc": 0.625},
            tags={"pul.data_lineage": "abcdef0123456789"},
        )
        assert (name, version) == ("pul-alexnet", "1")
        code, out, _ = run_cli(capsys, "models", "list", "--tracking-uri", uri)
        assert code == 0
        row = out.strip().splitlines()[1].split()
        assert row[:6] == ["pul-alexnet", "1", "candidate", "0.625", "-", "abcdef012345"]
        assert row[-1] == run_id
        code, _, _ = run_cli(
            capsys,
            "models",
            "pull",
            "models:/pul-alexnet@candidate",
            "--out",
            str(tmp_path / "pulled"),
            "--tracking-uri",
            uri,
        )
        assert code == 0
        pulled = load_weights(tmp_path / "pulled/model.pt").state_dict()
        original = load_weights(weights).state_dict()
        assert all(torch.equal(pulled[k], original[k]) for k in original)
        card = json.loads((tmp_path / "pulled/model-card.json").read_text())
        assert card["metrics"] == {"auc": 0.625} and card["tracking_uri"] == uri
    # the artifacts went through the server into its destination; the server is gone
    assert len(list((tmp_path / "artifacts").rglob("model.pt"))) == 1
    assert not healthy(uri)
    assert (tmp_path / "mlflow-server.log").stat().st_size > 0


def test_an_unreachable_server_is_one_line(capsys):
    code, out, err = run_cli(capsys, "models", "list", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("pul: error: MLflow tracking server at http://127.0.0.1:9 is unreachable")


def test_a_taken_port_is_refused(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"),
            serving(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "a", port=port),
        ):
            pass


def test_pul_mlflow_serve_runs_until_interrupted(tmp_path):
    port = free_port()
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
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        command,
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,  # Ctrl-C from a terminal: SIGINT not ignored
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("export" in line for line in lines):
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n" in lines, lines
        assert healthy(f"http://127.0.0.1:{port}")
        os.kill(child.pid, signal.SIGINT)  # Ctrl-C
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert "stopping the MLflow server" in child.stdout.read()
    assert not healthy(f"http://127.0.0.1:{port}")  # the mlflow server child went with it
