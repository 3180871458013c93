"""`--model` values: a weights file, or a tracker in MLflow, fetched to a local file.

    work/runs/sup/model.pt          a file (used as it is)
    models:/pul-alexnet@champion    the version an alias points at
    models:/pul-alexnet/3           a version
    runs:/RUN_ID/model.pt           an artifact of a run
    0123...cdef (32 hex digits)     that run's model.pt

Registered versions and run artifacts are downloaded into a cache folder
(`<cache>/<name>/<version>/model.pt`, `<cache>/runs/<run id>/...`), fresh on every use, and
are only ever read with `pul.weights.load_weights`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from jobs.tracking import registry
from jobs.tracking.registry import RegistryError
from pul.weights import load_weights

DEFAULT_CACHE = Path("work/cache/models")
"""Where downloaded trackers go unless a command says otherwise."""
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
RUN_ID = re.compile(r"[0-9a-f]{32}")
MODELS = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")
RUNS = re.compile(r"runs:/(?P<run>[^/]+)/(?P<path>.+)")


@dataclass
class ModelSpec:
    """A parsed `--model` value: a path, a name with an alias or version, or a run artifact."""

    text: str
    path: str = ""
    name: str = ""
    alias: str = ""
    version: str = ""
    run: str = ""
    artifact: str = ""

    @property
    def remote(self) -> bool:
        return not self.path

    @property
    def label(self) -> str:
        """A tracker name for tables and result folders (no slashes)."""
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version:
            return f"{self.name}-v{self.version}"
        if self.run:
            return f"run-{self.run[:8]}"
        stem = Path(self.path).stem
        return Path(self.path).parent.name if stem == "model" else stem


def parse_spec(spec: str) -> ModelSpec:
    """What a `--model` value names; RegistryError for a malformed URI."""
    if spec.startswith("models:/"):
        found = MODELS.fullmatch(spec)
        if not found:
            raise RegistryError(
                f"not a model URI: {spec!r} (expected models:/NAME@ALIAS or models:/NAME/VERSION)"
            )
        return ModelSpec(spec, **{k: v for k, v in found.groupdict().items() if v})
    if spec.startswith("runs:/"):
        found = RUNS.fullmatch(spec)
        if not found:
            raise RegistryError(f"not a run URI: {spec!r} (expected runs:/RUN_ID/PATH)")
        return ModelSpec(spec, run=found["run"], artifact=found["path"])
    if RUN_ID.fullmatch(spec) and not Path(spec).exists():
        return ModelSpec(spec, run=spec, artifact="model.pt")
    return ModelSpec(spec, path=spec)


def is_remote(spec: str) -> bool:
    """Whether `spec` needs MLflow (a models:/ or runs:/ URI, or a bare run id)."""
    return parse_spec(spec).remote


def resolve_model(spec: str, tracking_uri: str, cache: Path) -> Path:
    """The local weights file `spec` names, downloading it from MLflow into `cache` first.

    A file path comes back unchanged (its checks are the loader's). A missing registered
    model, version, alias or run, or a run without that artifact, is a one-line
    RegistryError naming what is missing; so is a fetched file that is not a pul model file.
    """
    parsed = parse_spec(spec)
    if not parsed.remote:
        return Path(parsed.path)
    client = registry.connect(tracking_uri)
    cache = Path(cache).resolve()  # absolute: Ray tasks may run in another folder
    if parsed.run:
        path = _fetch_run_artifact(client, parsed, tracking_uri, cache)
    else:
        info = registered_version(client, parsed)
        path = fetch_version(info, tracking_uri, cache / info.name / info.version)
    return checked(path, spec)


def registered_version(client: MlflowClient, parsed: ModelSpec) -> registry.VersionInfo:
    """The registered version a models:/ spec names."""
    if parsed.alias:
        return registry.version_by_alias(client, parsed.name, parsed.alias)
    return registry.get_version(client, parsed.name, parsed.version)


def fetch_version(info: registry.VersionInfo, tracking_uri: str, folder: Path) -> Path:
    """Download the weights of a registered version to `folder`/model.pt."""
    return _download(f"{info.source.rstrip('/')}/{registry.WEIGHTS_ARTIFACT}", tracking_uri, folder)


def _fetch_run_artifact(
    client: MlflowClient, parsed: ModelSpec, tracking_uri: str, cache: Path
) -> Path:
    try:
        run = client.get_run(parsed.run)
    except MlflowException:
        raise RegistryError(f"no MLflow run {parsed.run} at {tracking_uri}") from None
    artifact = parsed.artifact
    folder = cache / "runs" / parsed.run
    try:
        return _download(f"{run.info.artifact_uri.rstrip('/')}/{artifact}", tracking_uri, folder)
    except RegistryError:
        raise RegistryError(f"run {parsed.run} has no artifact file '{artifact}'") from None


def _download(artifact_uri: str, tracking_uri: str, folder: Path) -> Path:
    """Fetch one artifact file to `folder`, replacing what an earlier fetch left there."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp, _no_progress_bar():
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=tracking_uri
                )
            )
            if not local.is_file():
                raise RegistryError(f"{artifact_uri} is not a file")
            return local.replace(folder / local.name)
    except (MlflowException, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RegistryError(f"cannot download {artifact_uri}: {first}") from None
    finally:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if the download left it empty


def checked(path: Path, spec: str) -> Path:
    """`path` if it is a pul model file; RegistryError naming `spec` if it is not (or if it
    would run code when loaded), before anything else reads it."""
    try:
        load_weights(path)
    except ValueError as err:
        raise RegistryError(str(err).replace(str(path), spec)) from None
    return path


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow's download progress bar would break the one-line error of a failed command."""
    saved = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = saved
