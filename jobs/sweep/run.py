"""The sweep job end to end: resolve inputs, open the sweep's MLflow run, run the trials on
Ray Tune (tuner.py, trial.py), rank them and register the best (publish.py).

The sweep folder WORK/tune-<hash> is keyed by the config and the code version: running the
same command again resumes the same sweep (tuner.py says how).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from jobs.config import save_config, to_dict
from jobs.errors import JobError
from jobs.pipeline.steps import step_key
from jobs.sweep.config import SweepConfig
from jobs.sweep.publish import publish
from jobs.sweep.results import TrialRow, collect
from jobs.sweep.space import ARM_PATHS
from jobs.sweep.trial import validator
from jobs.sweep.tuner import run_tuner
from jobs.tracking.runs import code_version, log_params, resolve_uri, tracked_run


@dataclasses.dataclass
class SweepOutcome:
    """What a sweep leaves: its ranked trials, its folder and MLflow run, the registration."""

    trials: list[TrialRow]
    """Ranked: finished trials by benchmark AUC, then the stopped by their last val_auc."""
    folder: Path
    """The sweep folder (results.md, ranking.png, trials.json, the trials' run folders)."""
    run_id: str
    """The sweep's MLflow run (every trial's run is nested under it)."""
    registered: dict[str, str] | None
    """{name, version, alias} of the registered best tracker, or None."""


def sweep(cfg: SweepConfig, work: str | Path) -> SweepOutcome:
    """Run (or resume) the sweep in `work`."""
    cfg = _resolved(cfg)
    code = code_version()
    key = step_key(config=to_dict(cfg), code=code)[:10]
    folder = Path(work).resolve() / f"tune-{key}"
    uri = resolve_uri(cfg.tracking_uri, folder.parent)
    with tracked_run(uri, cfg.experiment, folder, "tune", {"pul.stage": "tune"}) as opened:
        client, parent = opened  # FINISHED, FAILED or KILLED with this block
        log_params(client, parent, to_dict(cfg))
        client.log_artifact(parent, str(save_config(cfg, folder / "config.yaml")))
        context = {
            "sweep": cfg,
            "folder": str(folder),
            "uri": uri,
            "parent": parent,
            "code": code,
            "validator": validator(cfg) if cfg.tc.train.validate_every else None,
        }
        rows = collect(run_tuner(cfg, folder, context), folder)
        registered = publish(rows, cfg, folder, client, parent, uri)
    return SweepOutcome(rows, folder, parent, registered)


def _resolved(cfg: SweepConfig) -> SweepConfig:
    """The config with its input paths checked and absolute (trials run in other folders)."""
    paths = {"data": cfg.data, "init": cfg.init, "benchmark": cfg.benchmark}
    if cfg.validation.root:
        paths["validation.root"] = cfg.validation.root
    for name, path in paths.items():
        if not path:
            raise JobError(f"the sweep needs {name}=PATH")
        if not Path(path).exists():
            raise JobError(f"no such path: {path} ({name})")
    absolute: dict[str, Any] = {k: str(Path(v).resolve()) for k, v in paths.items()}
    validation = dataclasses.replace(
        cfg.validation, root=absolute.pop("validation.root", cfg.validation.root)
    )
    arms = {name: _resolved_arm(name, arm) for name, arm in cfg.arms.items()}
    return dataclasses.replace(cfg, validation=validation, arms=arms, **absolute)


def _resolved_arm(name: str, arm: dict[str, Any]) -> dict[str, Any]:
    """An arm with its own data or init checked and made absolute ('' init: a fresh net)."""
    arm = dict(arm or {})
    for key in ARM_PATHS:
        if arm.get(key):
            if not Path(arm[key]).exists():
                raise JobError(f"no such path: {arm[key]} (arms.{name}.{key})")
            arm[key] = str(Path(arm[key]).resolve())
    return arm
