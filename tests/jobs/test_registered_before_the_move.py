"""Trackers registered before the MLflow code moved into jobs/tracking/ still load.

Their MLmodel files name `jobs.pyfunc_tracker` as the loader module; MLflow imports that
name when the version is loaded, so it must keep resolving.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from jobs.tracking import registry
from jobs.tracking.registry import register_tracker
from jobs.tracking.runs import experiment_id
from pul.models import ModelConfig, build_model
from pul.weights import save_weights


def _frames(count: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
    frames = []
    for t in range(count):
        frame = background.copy()
        frame[40 + t : 70 + t, 50 + 2 * t : 80 + 2 * t] = 230
        frames.append(frame)
    return frames


@pytest.mark.parametrize("loader", ["jobs.pyfunc_tracker", registry.LOADER_MODULE])
def test_a_version_with_either_loader_module_loads_and_tracks(tmp_path, monkeypatch, loader):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id(client, "pul-test", uri)).info.run_id
    torch.manual_seed(0)
    cfg = ModelConfig(width=0.25)
    weights = save_weights(build_model(cfg), cfg, tmp_path / "model.pt")
    monkeypatch.setattr(registry, "LOADER_MODULE", loader)  # as the old code wrote it
    name, version = register_tracker(
        weights, tracking_uri=uri, run_id=run_id, metrics={"auc": 0.3}, tags={}
    )
    folder = client.get_model_version(name, version).source.removeprefix("file://")
    assert f"loader_module: {loader}" in Path(folder, "MLmodel").read_text()
    mlflow.set_tracking_uri(uri)
    tracker = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    boxes = tracker.predict({"frames": _frames(), "box": [50, 40, 30, 30]})
    assert boxes.shape == (6, 4)
    assert np.allclose(boxes[0], [50, 40, 30, 30])
