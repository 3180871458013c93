"""The sweep's parts without running one: the search space, how many trials fit at once,
ASHA's rungs, and the ranking's table and picture."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from jobs.config import load_config
from jobs.sweep.config import AshaConfig, SweepConfig
from jobs.sweep.ranking import plot, table
from jobs.sweep.results import TrialRow
from jobs.sweep.space import Dimension, dimensions, tune_space, with_values
from jobs.sweep.tuner import scheduler, trials_at_once
from jobs.train.config import TrainConfig
from jobs.train.tc import TCConfig


def test_a_space_reads_the_same_flat_nested_or_from_overrides():
    flat = {"loss.noise": ["auto", 0, 8], "train.lr": {"loguniform": ["1e-4", 1e-2]}}
    nested = {"loss": {"noise": ["auto", 0, 8]}, "train": {"lr": {"loguniform": [1e-4, 1e-2]}}}
    overrides = ["space.loss.noise=[auto, 0, 8]", "space.train.lr={loguniform: [1e-4, 1e-2]}"]
    from_cli = load_config(SweepConfig, overrides=[*overrides, "searcher=random"]).space
    expected = [
        Dimension("loss.noise", values=("auto", 0, 8)),
        Dimension("train.lr", low=1e-4, high=1e-2, log=True),
    ]
    assert dimensions(flat) == dimensions(nested) == dimensions(from_cli) == expected


def test_a_point_sets_nested_fields_of_stage_3_and_is_checked():
    cfg = with_values(TCConfig(), {"loss.noise": 8, "train.lr": 0.02, "loss.kind": "bce"})
    assert (cfg.loss.noise, cfg.train.lr, cfg.loss.kind) == (8.0, 0.02, "bce")
    assert cfg.train.batch_size == TCConfig().train.batch_size  # the rest as it was
    with pytest.raises(ValueError, match=r"space.train.batch_size: .*expected int, got 4.0"):
        SweepConfig(searcher="random", space={"train.batch_size": {"uniform": [4, 16]}})


def test_grid_lists_every_value_and_the_others_sample():
    dims = dimensions({"loss.kind": ["bce", "nr"], "contrastive_weight": {"uniform": [0, 0.3]}})
    assert tune_space(dims[:1], grid=True) == {"loss.kind": {"grid_search": ["bce", "nr"]}}
    sampled = tune_space(dims, grid=False)
    assert sampled["loss.kind"].categories == ["bce", "nr"]
    assert (sampled["contrastive_weight"].lower, sampled["contrastive_weight"].upper) == (0, 0.3)


@pytest.mark.parametrize(
    ("train", "cluster", "expected"),
    [
        (dict(workers=2, cpus_per_worker=0.5), {"CPU": 2.0}, 2),  # this machine
        (dict(workers=2, cpus_per_worker=1.0), {"CPU": 2.0}, 1),
        (dict(workers=4, cpus_per_worker=1.0), {"CPU": 2.0}, 1),  # never none
        (dict(workers=2, cpus_per_worker=4, use_gpu=True), {"CPU": 64.0, "GPU": 8.0}, 4),
        (dict(workers=4, cpus_per_worker=8, use_gpu=True), {"CPU": 64.0, "GPU": 16.0}, 2),
    ],
)
def test_trials_at_once_follow_the_cluster(train, cluster, expected):
    assert trials_at_once(TrainConfig(**train), cluster) == expected


def test_asha_rungs_lie_below_the_last_step():
    cfg = SweepConfig(
        scheduler="asha",
        tc=TCConfig(train=TrainConfig(steps=12, validate_every=2)),
        asha=AshaConfig(grace_period=2, reduction_factor=2),
    )
    rungs = [milestone for milestone, _ in scheduler(cfg)._brackets[0]._rungs]
    assert sorted(rungs) == [2, 4, 8]  # a rung at 12 could stop a trial that has finished


def test_the_ranking_lists_stopped_trials_and_plots_one_panel_per_field(tmp_path):
    dims = dimensions({"loss.noise": ["auto", 0], "train.lr": {"loguniform": [1e-4, 1e-2]}})

    def row(trial, status, step, val, auc, noise, lr):
        point = {"loss.noise": noise, "train.lr": lr}
        return TrialRow(trial, point, status, step, val, auc, auc, f"run-{trial}", str(tmp_path))

    rows = [
        row("a", "finished", 12, 0.71, 0.69, "auto", 1e-3),
        row("b", "finished", 12, 0.70, 0.65, 0, 5e-3),
        row("c", "stopped", 4, 0.52, None, 0, 9e-3),
    ]
    lines = table(rows, [d.key for d in dims]).splitlines()
    assert lines[0].startswith("| rank | trial | loss.noise | train.lr | status | steps |")
    assert lines[2].startswith("| 1 | a | auto | 0.001 | finished | 12 | 0.710 | 0.690 |")
    assert lines[4].startswith("| 3 | c | 0 | 0.009 | stopped early at step 4 | 4 | 0.520 | - |")
    image = plt.imread(plot(rows, dims, tmp_path / "ranking.png"))
    assert image.shape[1] > 3 * image.shape[0] // 2 and image[..., :3].std() > 0.05


@pytest.mark.parametrize("searcher", ["grid", "random", "optuna"])
def test_every_searcher_runs_only_as_many_trials_at_once_as_asked(searcher):
    from jobs.sweep.tuner import tune_config

    space = {"train.batch_size": [4, 8]}
    config = tune_config(SweepConfig(searcher=searcher, space=space), concurrent=2)
    assert config.max_concurrent_trials == 2
    if searcher != "optuna":  # Tune ignores max_concurrent_trials for a generator instance
        assert config.search_alg.max_concurrent == 2
