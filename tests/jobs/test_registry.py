"""The MLflow model registry: register, list, promote, pull, `models:/` URIs, the pyfunc.

Real MLflow on a SQLite store in a temporary folder. One store per module holds:

    v1  auc 0.40        (candidate, then moved to v2)
    v2  auc 0.30        candidate
    v3  no metrics      unscored
    v4  auc 0.50        tampered (its weights file is replaced in one test)

all with the same slim, untrained AlexNet weights (width 0.25, seed 0: the network that
follows the textured square of tests.helpers.square_scene).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from jobs.tracking import registry
from jobs.tracking.model_uri import parse_spec, resolve_model
from jobs.tracking.registry import WEIGHTS_ARTIFACT, register_tracker
from jobs.tracking.runs import experiment_id
from pul.models import ModelConfig, build_model
from pul.weights import FORMAT, load_weights, save_weights
from tests.helpers import centre_error, run_cli, save_untrained, square_scene
from tests.shards.clip_fixtures import make_otb_set, write_video

LINEAGE = "f9afd778a98c0123456789abcdef"
PAIRS = "0badc0ffee00112233445566"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store with one open run, the weights file, and versions 1 to 4."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id(client, "pul-test", uri)).info.run_id
    weights = save_untrained(root / "model.pt")
    client.log_artifact(run_id, str(weights))  # as a training job does: runs:/ID/model.pt
    config = root / "config.yaml"
    config.write_text("model:\n  width: 0.25\n")
    tags = {"pul.data_lineage": LINEAGE, "pul.pairs_lineage": PAIRS, "pul.stage": "tc"}

    def register(metrics, alias=registry.CANDIDATE):
        return register_tracker(
            weights,
            tracking_uri=uri,
            run_id=run_id,
            metrics=metrics,
            tags=tags,
            config_file=config,
            alias=alias,
        )

    first = register({"auc": 0.40, "precision": 0.55})
    aliases_after_first = aliases(client)
    second = register({"auc": 0.30, "precision": 0.45})
    third = register({}, alias="unscored")
    fourth = register({"auc": 0.50}, alias="tampered")
    res_cfg = ModelConfig(backbone="resnet22", width=0.25)
    resnet = save_weights(build_model(res_cfg), res_cfg, root / "resnet.pt")
    resnet_version = register_tracker(
        resnet, tracking_uri=uri, run_id=run_id, metrics={"auc": 0.2}, tags={}
    )
    return {
        "uri": uri,
        "client": client,
        "run_id": run_id,
        "weights": weights,
        "versions": [first, second, third, fourth, resnet_version],
        "aliases_after_first": aliases_after_first,
    }


def aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model("pul-alexnet").aliases.items()}


@pytest.fixture
def mlflow_uri(store, monkeypatch):
    """MLflow's global tracking URI set to the store (for mlflow.pyfunc.load_model)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])  # restored afterwards
    with _use_tracking_uri(store["uri"]):
        yield store["uri"]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Run in tmp_path: eval and track download into work/cache/models under the cwd."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_otb_set(tmp_path_factory.mktemp("bench") / "otb", videos=2, frames=8)


def test_register_makes_versions_with_tags_and_moves_candidate(store):
    client, run_id = store["client"], store["run_id"]
    alexnets = [("pul-alexnet", str(v)) for v in (1, 2, 3, 4)]
    assert store["versions"] == [*alexnets, ("pul-resnet22", "1")]  # named after the backbone
    assert store["aliases_after_first"] == {"candidate": "1"}
    moved = aliases(client)
    moved.pop("champion", None)  # set by the promote test, when it ran first
    assert moved == {"candidate": "2", "unscored": "3", "tampered": "4"}
    v2 = client.get_model_version("pul-alexnet", "2")
    assert v2.run_id == run_id
    assert v2.tags["pul.data_lineage"] == LINEAGE and v2.tags["pul.stage"] == "tc"
    assert float(v2.tags["pul.metric.auc"]) == 0.30
    assert float(v2.tags["pul.metric.precision"]) == 0.45
    assert v2.tags["pul.backbone"] == "alexnet" and v2.tags["pul.code_version"]
    assert not any(
        k.startswith("pul.metric.") for k in client.get_model_version("pul-alexnet", "3").tags
    )
    # the weights and the config sit in the version's data folder; the loader is our module
    folder = Path(v2.source.removeprefix("file://"))
    assert (folder / WEIGHTS_ARTIFACT).stat().st_size == store["weights"].stat().st_size
    assert (folder / "data/tracker/config.yaml").read_text() == "model:\n  width: 0.25\n"
    assert "loader_module: jobs.tracking.pyfunc" in (folder / "MLmodel").read_text()
    # the pipeline's run stays open, and lists the five logged models as its outputs
    logged = client.get_run(run_id)
    assert logged.info.status == "RUNNING"
    assert len(logged.outputs.model_outputs) == 5


def test_register_refuses_a_file_that_is_not_a_model(store, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(registry.RegistryError, match="not a pul model file"):
        register_tracker(
            bad, tracking_uri=store["uri"], run_id=store["run_id"], metrics={}, tags={}
        )
    assert len(store["client"].search_model_versions("name = 'pul-alexnet'")) == 4


def test_list_shows_versions_aliases_metrics_lineage(store, capsys):
    code, out, _ = run_cli(capsys, "models", "list", "--tracking-uri", store["uri"])
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == [
        "name",
        "version",
        "aliases",
        "AUC",
        "precision",
        "lineage",
        "created",
        "run",
    ]
    assert len(rows) == 5 and rows[4].split()[:4] == ["pul-resnet22", "1", "candidate", "0.200"]
    v2 = rows[1].split()
    assert v2[:2] == ["pul-alexnet", "2"] and "candidate" in v2[2].split(",")
    assert v2[3:6] == ["0.300", "0.450", f"{LINEAGE[:12]}+{PAIRS[:12]}"]
    assert v2[-1] == store["run_id"]
    assert rows[2].split()[2:5] == ["unscored", "-", "-"]
    code, _, err = run_cli(
        capsys, "models", "list", "--name", "pul-nothing", "--tracking-uri", store["uri"]
    )
    assert code == 2 and err.count("\n") == 1
    assert "no registered model 'pul-nothing' (registered: pul-alexnet, pul-resnet22)" in err


def test_promote_refuses_a_lower_or_missing_auc_unless_forced(store, capsys):
    uri, client = store["uri"], store["client"]
    code, out, _ = run_cli(
        capsys,
        "models",
        "promote",
        "pul-alexnet",
        "1",
        "--alias",
        "champion",
        "--tracking-uri",
        uri,
    )
    assert code == 0 and "nothing -> version 1 (AUC 0.400)" in out
    code, out, err = run_cli(
        capsys,
        "models",
        "promote",
        "pul-alexnet",
        "2",
        "--alias",
        "champion",
        "--tracking-uri",
        uri,
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "AUC 0.300, below 0.400 of version 1" in err
    assert aliases(client)["champion"] == "1"
    code, _, err = run_cli(
        capsys,
        "models",
        "promote",
        "pul-alexnet",
        "3",
        "--alias",
        "champion",
        "--tracking-uri",
        uri,
    )
    assert code == 2 and "version 3 has no AUC" in err and err.count("\n") == 1
    code, out, _ = run_cli(
        capsys,
        "models",
        "promote",
        "pul-alexnet",
        "2",
        "--alias",
        "champion",
        "--force",
        "--tracking-uri",
        uri,
    )
    assert code == 0 and "version 1 (AUC 0.400) -> version 2 (AUC 0.300, forced)" in out
    assert aliases(client)["champion"] == "2"
    code, _, err = run_cli(capsys, "models", "promote", "pul-alexnet", "9", "--tracking-uri", uri)
    assert code == 2 and "pul-alexnet has no version 9 (versions: 1, 2, 3, 4)" in err


def test_missing_alias_name_version_or_run_is_one_line(store, bench, tmp_path, capsys):
    uri = store["uri"]
    eval_args = ("eval", "--root", str(bench), "--workers", "1", "--out", str(tmp_path / "e"))
    code, _, err = run_cli(
        capsys, *eval_args, "--model", "models:/pul-alexnet@nope", "--tracking-uri", uri
    )
    assert code == 2 and err.count("\n") == 1
    assert "pul-alexnet has no alias 'nope' (aliases: " in err and "candidate" in err
    code, _, err = run_cli(
        capsys,
        "models",
        "pull",
        "models:/pul-alexnet@nope",
        "--out",
        str(tmp_path / "p"),
        "--tracking-uri",
        uri,
    )
    assert code == 2 and err.count("\n") == 1 and "no alias 'nope'" in err
    assert not (tmp_path / "p").exists()
    cases = {
        "models:/pul-resnet@candidate": "no registered model 'pul-resnet' (registered: pul-alexnet",
        "models:/pul-resnet22@champion": "no alias 'champion' (aliases: candidate)",
        "models:/pul-alexnet/17": "pul-alexnet has no version 17",
        "0123456789abcdef0123456789abcdef": "no MLflow run 0123456789abcdef0123456789abcdef",
        f"runs:/{store['run_id']}/other.pt": "has no artifact file 'other.pt'",
        "models:/pul-alexnet": "not a model URI",
    }
    for spec, message in cases.items():
        code, _, err = run_cli(capsys, *eval_args, "--model", spec, "--tracking-uri", uri)
        assert code == 2 and err.count("\n") == 1 and message in err, (spec, err)


def test_pull_writes_the_same_weights_and_a_card(store, tmp_path, capsys):
    out = tmp_path / "pulled"
    code, stdout, _ = run_cli(
        capsys,
        "models",
        "pull",
        "models:/pul-alexnet@candidate",
        "--out",
        str(out),
        "--tracking-uri",
        store["uri"],
    )
    assert code == 0 and "AlexNet" in stdout
    pulled = load_weights(out / "model.pt").state_dict()
    original = load_weights(store["weights"]).state_dict()
    assert pulled.keys() == original.keys()
    assert all(torch.equal(pulled[k], original[k]) for k in original)
    card = json.loads((out / "model-card.json").read_text())
    assert (card["name"], card["version"]) == ("pul-alexnet", "2") and "candidate" in card[
        "aliases"
    ]
    assert card["metrics"] == {"auc": 0.30, "precision": 0.45}
    assert card["lineage"] == {"pul.data_lineage": LINEAGE, "pul.pairs_lineage": PAIRS}
    assert card["run_id"] == store["run_id"]
    # a run's model.pt (runs:/ URI) is the same file
    code, _, _ = run_cli(
        capsys,
        "models",
        "pull",
        f"runs:/{store['run_id']}/model.pt",
        "--out",
        str(tmp_path / "run"),
        "--tracking-uri",
        store["uri"],
    )
    assert code == 0
    assert (tmp_path / "run/model.pt").read_bytes() == store["weights"].read_bytes()


class _RunsCode:
    """Pickles as a call of os.system: a model file that would run a command when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_weights_file_carrying_code_is_refused_and_never_runs(
    store, bench, tmp_path, capsys, mlflow_uri
):
    version = store["client"].get_model_version("pul-alexnet", "4")
    target = Path(version.source.removeprefix("file://")) / WEIGHTS_ARTIFACT
    marker = tmp_path / "ran"
    torch.save({"format": FORMAT, "version": 1, "x": _RunsCode(f"touch {marker}")}, target)
    code, _, err = run_cli(
        capsys,
        "models",
        "pull",
        "models:/pul-alexnet@tampered",
        "--out",
        str(tmp_path / "p"),
        "--tracking-uri",
        store["uri"],
    )
    assert code == 2 and err.count("\n") == 1
    assert "models:/pul-alexnet@tampered: not a pul model file (it refers to code)" in err
    assert not (tmp_path / "p" / "model.pt").exists()
    code, _, err = run_cli(
        capsys,
        "eval",
        "--root",
        str(bench),
        "--workers",
        "1",
        "--model",
        "models:/pul-alexnet@tampered",
        "--out",
        str(tmp_path / "e"),
        "--tracking-uri",
        store["uri"],
    )
    assert code == 2 and err.count("\n") == 1
    assert "models:/pul-alexnet@tampered: not a pul model file (it refers to code)" in err
    with pytest.raises(ValueError, match="it refers to code"):
        mlflow.pyfunc.load_model("models:/pul-alexnet@tampered")
    assert not marker.exists()


def test_pyfunc_tracks_a_moving_square(store, mlflow_uri):
    model = mlflow.pyfunc.load_model("models:/pul-alexnet@candidate")
    frames, truth = square_scene()
    frames, truth = frames[:16], truth[:16]  # 16 of the 40 frames: this machine is slow
    boxes = model.predict({"frames": frames, "box": truth[0].tolist()})
    assert isinstance(boxes, np.ndarray) and boxes.shape == (16, 4)
    np.testing.assert_array_equal(boxes[0], truth[0])
    assert centre_error(boxes, truth).mean() < 4.0
    assert centre_error(boxes, truth)[-1] < 6.0  # still on it after moving 54 px
    # one NxHxWx3 array of RGB frames gives the same boxes
    rgb = np.stack(frames[:4])[..., ::-1]
    again = model.predict({"frames": rgb, "box": truth[0], "channels": "rgb"})
    np.testing.assert_array_equal(again, boxes[:4])
    with pytest.raises(ValueError, match="box must be"):
        model.predict({"frames": frames[:2], "box": [1, 2, 3]})


def test_eval_of_a_registered_tracker_equals_eval_of_its_file(store, bench, tmp_path, capsys):
    code, _, _ = run_cli(
        capsys,
        "eval",
        "--root",
        str(bench),
        "--workers",
        "1",
        "--out",
        "e",
        "--model",
        "models:/pul-alexnet@candidate",
        "--model",
        f"file={store['weights']}",
        "--tracking-uri",
        store["uri"],
    )
    assert code == 0
    metrics = json.loads((tmp_path / "e/metrics.json").read_text())["trackers"]
    assert set(metrics) == {"pul-alexnet@candidate", "file"}
    auc = metrics["file"]["overall"]["auc"]
    assert 0.0 < auc <= 1.0 and metrics["pul-alexnet@candidate"]["overall"]["auc"] == auc
    for seq in ("seq00", "seq01"):
        expected = (tmp_path / "e/results/file" / f"{seq}.txt").read_text()
        assert (tmp_path / "e/results/pul-alexnet@candidate" / f"{seq}.txt").read_text() == expected
    assert (tmp_path / "work/cache/models/pul-alexnet/2/model.pt").is_file()


def test_every_kind_of_spec_fetches_the_same_file(store, tmp_path):
    original = store["weights"].read_bytes()
    specs = {
        "models:/pul-alexnet@candidate": "pul-alexnet/2/model.pt",
        "models:/pul-alexnet/1": "pul-alexnet/1/model.pt",
        f"runs:/{store['run_id']}/model.pt": f"runs/{store['run_id']}/model.pt",
        store["run_id"]: f"runs/{store['run_id']}/model.pt",
    }
    for spec, where in specs.items():
        path = resolve_model(spec, store["uri"], tmp_path / "cache")
        assert path == tmp_path / "cache" / where and path.read_bytes() == original, spec
    assert sorted(p.name for p in (tmp_path / "cache/pul-alexnet/2").iterdir()) == ["model.pt"]


def test_track_takes_a_models_uri(store, tmp_path, capsys):
    video = write_video(tmp_path / "v.mp4", frames=5)
    code, out, _ = run_cli(
        capsys,
        "track",
        str(video),
        "--model",
        "models:/pul-alexnet/2",
        "--box",
        "10,10,20,20",
        "--out",
        "t.mp4",
        "--tracking-uri",
        store["uri"],
    )
    assert code == 0 and "5 frames" in out
    assert np.loadtxt(tmp_path / "t.txt", delimiter=",").shape == (5, 4)


def test_model_specs_and_their_names(tmp_path):
    assert parse_spec("models:/pul-alexnet@champion").label == "pul-alexnet@champion"
    assert parse_spec("models:/pul-resnet22/12").label == "pul-resnet22-v12"
    assert parse_spec("runs:/abc/sub/model.pt").artifact == "sub/model.pt"
    assert parse_spec("work/runs/tc/model.pt").label == "tc"
    assert not parse_spec("a" * 32).path  # a bare run id ...
    (tmp_path / ("a" * 32)).write_text("")
    assert parse_spec(str(tmp_path / ("a" * 32))).path  # ... unless such a file exists
    assert resolve_model("x.pt", "http://127.0.0.1:9", tmp_path) == Path("x.pt")  # no MLflow


def test_a_missing_database_is_one_line(tmp_path, capsys):
    db = tmp_path / "none.db"
    code, _, err = run_cli(capsys, "models", "list", "--tracking-uri", f"sqlite:///{db}")
    assert code == 2 and err.count("\n") == 1 and f"no MLflow database at {db}" in err
    assert not db.exists()
