"""A sweep's arms: named bundles of settings compared as one searched value `arm`, each
with its own data and init if it likes; checked when the sweep's config is built."""

from __future__ import annotations

import pytest

from jobs.errors import JobError
from jobs.sweep.config import SweepConfig
from jobs.sweep.run import _resolved
from jobs.sweep.space import arm_settings
from jobs.sweep.trial import trial_config
from jobs.train.tc import TCConfig
from pul.losses import LossConfig

ARMS = {
    "a": {"data": "/labeled/pairs", "init": "", "loss.kind": "bce"},
    "b": {"loss": {"kind": "nr"}},  # nested, as YAML may write it
}
SPACE = {"arm": ["a", "b"], "train.seed": [0, 1]}
ONLY_A = {"arm": ["a"], "train.seed": [0]}


def sweep(**kwargs) -> SweepConfig:
    given = {"data": "/mined/pairs", "init": "/bd/model.pt", "benchmark": "/bench"}
    return SweepConfig(**{**given, **kwargs})


def test_an_arm_brings_its_data_init_and_settings_to_its_trials():
    cfg = sweep(arms=ARMS, space=SPACE)
    a = trial_config(cfg, {"arm": "a", "train.seed": 1}, "sqlite:///x.db")
    assert (a.data, a.init, a.loss.kind, a.train.seed) == ("/labeled/pairs", "", "bce", 1)
    assert a.tracking_uri == "sqlite:///x.db" and a.experiment == cfg.experiment
    b = trial_config(cfg, {"arm": "b", "train.seed": 0}, "sqlite:///x.db")
    assert (b.data, b.init, b.loss.kind, b.train.seed) == ("/mined/pairs", "/bd/model.pt", "nr", 0)
    # the rest as the sweep's tc has it
    assert a.strategy == b.strategy == cfg.tc.strategy


def test_the_bce_arm_overrides_the_sweeps_own_loss():
    cfg = sweep(arms=ARMS, space=SPACE, tc=TCConfig(loss=LossConfig(kind="soft_bce")))
    assert trial_config(cfg, {"arm": "a", "train.seed": 0}, "").loss.kind == "bce"
    assert trial_config(cfg, {"arm": "b", "train.seed": 0}, "").loss.kind == "nr"


def test_a_point_without_an_arm_is_the_sweeps_own():
    cfg = sweep()
    trial = trial_config(cfg, {"loss.noise": 8.0, "train.batch_size": 8}, "")
    assert (trial.data, trial.init) == ("/mined/pairs", "/bd/model.pt")
    assert (trial.loss.noise, trial.train.batch_size) == (8.0, 8)


def test_the_points_own_keys_win_over_its_arms():
    arms = {"a": {"contrastive_weight": 0.0, "tau": 0.5}}
    settings = arm_settings(arms, {"arm": "a", "contrastive_weight": 0.3})
    assert settings == {"contrastive_weight": 0.3, "tau": 0.5}


@pytest.mark.parametrize(
    ("arms", "space", "message"),
    [
        (ARMS, {"train.seed": [0]}, r"arms \['a', 'b'\] are defined but the space has no 'arm'"),
        (
            ARMS,
            {"arm": ["a", "c"], "train.seed": [0]},
            r"space.arm: no arm named 'c' \(defined: \['a', 'b'\]\)",
        ),
        ({"a": {"loss.knd": "bce"}}, ONLY_A, r"arms.a: .*has no field 'knd'.*'kind'"),
        ({"a": {"train.steps": 10}}, ONLY_A, r"arms.a: .*the sweep sets train.steps"),
        ({"a": {"loss.kind": "mse"}}, ONLY_A, r"arms.a: .*kind"),
        ({}, {"arm": {"uniform": [0, 1]}, "train.seed": [0]}, r"space.arm: a list of arm names"),
    ],
)
def test_a_sweep_refuses_arms_that_do_not_fit_its_space(arms, space, message):
    with pytest.raises(ValueError, match=message):
        sweep(arms=arms, space=space, searcher="random")


def test_arms_paths_are_checked_and_made_absolute_when_the_sweep_starts(tmp_path, monkeypatch):
    for name in ("mined", "bd.pt", "bench", "labeled"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    given = {"data": "mined", "init": "bd.pt", "benchmark": "bench", "space": SPACE}
    cfg = SweepConfig(**given, arms={"a": {"data": "labeled", "init": ""}, "b": {}})
    resolved = _resolved(cfg)
    assert resolved.arms["a"] == {"data": str(tmp_path / "labeled"), "init": ""}
    assert resolved.arms["b"] == {}
    missing = SweepConfig(**given, arms={"a": {"data": "nowhere"}, "b": {}})
    with pytest.raises(JobError, match=r"no such path: nowhere \(arms.a.data\)"):
        _resolved(missing)


def test_a_space_of_arms_alone_is_a_sweep():
    cfg = sweep(arms=ARMS, space={"arm": ["a", "b"]})
    assert trial_config(cfg, {"arm": "a"}, "").loss.kind == "bce"
    with pytest.raises(ValueError, match="search space is empty"):
        sweep(space={})
