"""The MLflow model registry of trackers: register, list, promote.

Every tracker is registered as a new version of `pul-alexnet` or `pul-resnet22` (after its
backbone). A version is an MLflow pyfunc model whose data folder holds the plain `model.pt`
of `pul.weights` (and the training config): `mlflow.pyfunc.load_model("models:/pul-alexnet@
champion")` gives a tracker (see `jobs.tracking.pyfunc`) and nothing in it is unpickled as
code. Versions carry their numbers and lineage as tags (`pul.metric.auc`,
`pul.data_lineage`, `pul.code_version`, ...); aliases (MLflow 3 has no stages) name the roles:
`candidate` is set on every new version, `champion` is moved by `promote`, which refuses a
version scoring below the one it replaces.

Everything goes through an `MlflowClient` of an explicit tracking URI, never MLflow's global
URI or active run: the pipeline's run stays open and other clients in the process are
untouched.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from jobs.errors import JobError
from jobs.tracking.runs import check_reachable, code_version, resolve_uri
from pul.models.resnet22 import CIResNet22
from pul.weights import load_weights

MODEL_NAMES = {"alexnet": "pul-alexnet", "resnet22": "pul-resnet22"}
"""Backbone -> the registered model its trackers are versions of."""
CANDIDATE = "candidate"
"""Alias set on every newly registered version."""
CHAMPION = "champion"
"""Alias of the tracker in use; moved only by `promote`."""
DEFAULT_WORK = Path("work/runs")
"""Without a tracking URI: the SQLite store of the training jobs run in work/runs/<name>."""
LOADER_MODULE = "jobs.tracking.pyfunc"
DATA_DIR = "tracker"
WEIGHTS_ARTIFACT = f"data/{DATA_DIR}/model.pt"
"""The weights file inside a registered version's artifacts."""
METRIC_TAG = "pul.metric."
"""Prefix of the version tags holding its metrics (pul.metric.auc, pul.metric.precision)."""
LINEAGE_TAG = "lineage"
"""`pul.` tags whose key holds this are data lineage (shard manifest hashes):
pul.data_lineage (the clips), pul.pairs_lineage (mined pairs), ..."""


class RegistryError(JobError):
    """The registry cannot do what was asked: a name, version, alias or run is missing."""


@dataclass
class VersionInfo:
    """One registered version, as listed and compared."""

    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    run_id: str
    created: datetime
    source: str

    @property
    def metrics(self) -> dict[str, float]:
        out = {}
        for key, value in self.tags.items():
            if key.startswith(METRIC_TAG):
                with contextlib.suppress(ValueError):
                    out[key.removeprefix(METRIC_TAG)] = float(value)
        return out

    @property
    def auc(self) -> float | None:
        return self.metrics.get("auc")

    @property
    def lineage(self) -> dict[str, str]:
        return {
            k: v for k, v in sorted(self.tags.items()) if k.startswith("pul.") and LINEAGE_TAG in k
        }


def default_tracking_uri(explicit: str = "") -> str:
    """`explicit`, else $MLFLOW_TRACKING_URI, else the training jobs' SQLite store."""
    return resolve_uri(explicit, DEFAULT_WORK)


def connect(uri: str) -> MlflowClient:
    """A client of `uri`; one-line errors for an unreachable server or a missing database."""
    check_reachable(uri)
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.is_file():
            raise RegistryError(
                f"no MLflow database at {db}: register a model first, or pass --tracking-uri"
            )
    return MlflowClient(uri)


@contextlib.contextmanager
def mlflow_errors() -> Iterator[None]:
    """MLflow's own refusals (bad alias name, store errors) as one-line RegistryErrors."""
    try:
        yield
    except MlflowException as err:
        raise RegistryError(" ".join(err.message.split())) from None


def register_tracker(
    model_file: Path,
    *,
    tracking_uri: str,
    run_id: str,
    metrics: dict[str, float],
    tags: dict[str, str],
    config_file: Path | None = None,
    alias: str = CANDIDATE,
) -> tuple[str, str]:
    """Log model_file as a pyfunc model into run `run_id` (an existing, open MLflow run) and
    register it as a new version of pul-alexnet / pul-resnet22 (from the weights' own
    backbone); tag the version with `tags` (data lineage under `pul.*lineage*` keys such as
    pul.data_lineage and pul.pairs_lineage, code version, ...) and `metrics` (as
    `pul.metric.<key>`), keep the config file beside the weights; set alias `alias`.
    Returns (registered name, version).
    """
    backbone = _backbone(Path(model_file))
    name = MODEL_NAMES[backbone]
    client = connect(tracking_uri)
    version_tags = {
        "pul.backbone": backbone,
        "pul.code_version": code_version(),
        **{k: str(v) for k, v in tags.items()},
        **{f"{METRIC_TAG}{k}": repr(float(v)) for k, v in metrics.items()},
    }
    with mlflow_errors(), tempfile.TemporaryDirectory(prefix="pul-register-") as tmp:
        run = client.get_run(run_id)
        model_id, location = _log_pyfunc(client, run, Path(model_file), config_file, Path(tmp))
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name, description=f"pul {backbone} trackers")
        created = client.create_model_version(
            name,
            source=location,  # the logged model's folder (a models:/m-... source would make
            run_id=run_id,  # the SQLite registry look it up through MLflow's global URI)
            tags=version_tags,
            description=f"{backbone} tracker of run {run_id}",
            model_id=model_id,
        )
        client.set_registered_model_alias(name, alias, created.version)
    return name, str(created.version)


def _backbone(model_file: Path) -> str:
    try:
        net = load_weights(model_file)
    except ValueError as err:  # not a model file, or one that would run code
        raise RegistryError(str(err)) from None
    return "resnet22" if isinstance(net.backbone, CIResNet22) else "alexnet"


def _log_pyfunc(
    client: MlflowClient, run, model_file: Path, config_file: Path | None, tmp: Path
) -> tuple[str, str]:
    """The steps of `mlflow.pyfunc.log_model`, on this client and this run (log_model needs
    the fluent active run and global URI). Returns (logged model id, its artifact location)."""
    data = tmp / DATA_DIR
    data.mkdir()
    shutil.copyfile(model_file, data / "model.pt")
    if config_file is not None:
        shutil.copyfile(config_file, data / "config.yaml")
    logged = client.create_logged_model(
        run.info.experiment_id, name="tracker", source_run_id=run.info.run_id, model_type="pul"
    )
    try:
        meta = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run.info.run_id,
            model_id=logged.model_id,
        )
        mlflow.pyfunc.save_model(
            tmp / "model",
            loader_module=LOADER_MODULE,
            data_path=str(data),
            mlflow_model=meta,
            pip_requirements=_requirements(),  # given: inferring them loads the model again
        )
        client.log_model_artifacts(logged.model_id, str(tmp / "model"))
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_outputs(run.info.run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return logged.model_id, logged.artifact_location


def _requirements() -> list[str]:
    packages = ("pul", "torch", "numpy", "opencv-python-headless", "mlflow")
    return [f"{p}=={package_version(p).split('+')[0]}" for p in packages]


def list_versions(client: MlflowClient, name: str | None = None) -> list[VersionInfo]:
    """Every registered version (of `name`), by name and version number."""
    with mlflow_errors():
        if name is not None:
            models = [_registered_model(client, name)]
        else:
            models = list(client.search_registered_models(max_results=1000))
        out = []
        for model in models:
            aliases = _aliases_by_version(model.aliases)
            found = client.search_model_versions(
                filter_string=f"name = '{_quoted(model.name)}'", max_results=10_000
            )
            out += [_info(v, aliases.get(str(v.version), [])) for v in found]
    return sorted(out, key=lambda v: (v.name, int(v.version)))


def get_version(client: MlflowClient, name: str, version: str) -> VersionInfo:
    """Version `version` of `name`; RegistryError naming the versions there are."""
    model = _registered_model(client, name)
    try:
        found = client.get_model_version(name, str(version))
    except MlflowException:
        known = [v.version for v in list_versions(client, name)]
        raise RegistryError(
            f"{name} has no version {version} (versions: {_names(known)})"
        ) from None
    return _info(found, _aliases_by_version(model.aliases).get(str(found.version), []))


def version_by_alias(client: MlflowClient, name: str, alias: str) -> VersionInfo:
    """The version `alias` of `name` points at; RegistryError naming the aliases there are."""
    model = _registered_model(client, name)
    if alias not in model.aliases:
        raise RegistryError(
            f"{name} has no alias '{alias}' (aliases: {_names(sorted(model.aliases))})"
        )
    return get_version(client, name, str(model.aliases[alias]))


def promote(client: MlflowClient, name: str, version: str, alias: str, force: bool) -> str:
    """Point `alias` at `version`, unless its AUC is missing or below the current holder's
    (`force` overrides both). Returns a line saying what moved."""
    new = get_version(client, name, version)
    held = _registered_model(client, name).aliases.get(alias)
    holder = get_version(client, name, str(held)) if held is not None else None
    if holder is not None and holder.version == new.version:
        return f"{alias}: {name} version {new.version} already (AUC {_auc(new)})"
    if not force:
        if new.auc is None:
            raise RegistryError(
                f"{name} version {new.version} has no AUC ({METRIC_TAG}auc tag): not promoted "
                f"to '{alias}'; --force promotes it anyway"
            )
        if holder is not None and holder.auc is not None and new.auc < holder.auc:
            raise RegistryError(
                f"{name} version {new.version} has AUC {new.auc:.3f}, below {holder.auc:.3f} of "
                f"version {holder.version} which holds '{alias}': not promoted; --force "
                "promotes it anyway"
            )
    with mlflow_errors():
        client.set_registered_model_alias(name, alias, new.version)
    before = f"version {holder.version} (AUC {_auc(holder)})" if holder else "nothing"
    forced = ", forced" if force else ""
    return f"{alias}: {name} {before} -> version {new.version} (AUC {_auc(new)}{forced})"


def _auc(info: VersionInfo) -> str:
    return "none" if info.auc is None else f"{info.auc:.3f}"


def _registered_model(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException:
        with mlflow_errors():
            known = [m.name for m in client.search_registered_models(max_results=1000)]
        raise RegistryError(
            f"no registered model '{name}' (registered: {_names(sorted(known))})"
        ) from None


def _aliases_by_version(aliases: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        out.setdefault(str(version), []).append(alias)
    return out


def _info(mv, aliases: list[str]) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=aliases,
        tags=dict(mv.tags),
        run_id=mv.run_id or "",
        created=datetime.fromtimestamp(mv.creation_timestamp / 1000),
        source=mv.source,
    )


def _quoted(name: str) -> str:
    if "'" in name:
        raise RegistryError(f"a model name cannot contain a quote: {name!r}")
    return name


def _names(items: list) -> str:
    return ", ".join(str(i) for i in items) or "none"
