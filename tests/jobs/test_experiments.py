"""`pul experiment`: the reports built from a sweep's trials (no sweep run here), the
experiment config's checks, the CLI's one-line refusals and the budget presets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from jobs.cli import main
from jobs.config import load_config
from jobs.experiments import ahm_vs_rss, noise_robustness, supervised_gap
from jobs.experiments.config import ExperimentConfig
from jobs.experiments.report import Spread, relative_gain, spread
from jobs.sweep.results import TrialRow

ROOT = Path(__file__).resolve().parents[2]

PRESETS = Path(__file__).resolve().parents[2] / "configs" / "experiments"


def row(point: dict, auc: float | None, status: str = "finished", p20: float | None = None):
    trial = "-".join(f"{v}" for v in point.values())
    return TrialRow(
        trial_id=trial, point=point, status=status, step=200, val_auc=0.3, auc=auc,
        precision_20=auc if p20 is None else p20, run_id=f"run-{trial}", run_dir="",
    )  # fmt: skip


def table_line(text: str, first_cell: str) -> list[str]:
    """The cells of the report table's line that starts with `first_cell`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table line {first_cell!r} in:\n{text}")


# ---------------------------------------------------------------- shared report parts


def test_a_spread_is_the_mean_and_sample_std_over_seeds():
    s = spread([0.5, 0.6, 0.7])
    assert (s.mean, s.n) == (pytest.approx(0.6), 3)
    assert s.std == pytest.approx(0.1)  # n - 1 in the denominator (population std: 0.0816)
    assert s.cell() == "0.600 ± 0.100"
    assert s.cell(digits=1) == "0.6 ± 0.1"
    assert spread([0.42]) == Spread(0.42, 0.0, 1) and spread([0.42]).cell() == "0.420"
    # missing and non-finite scores are left out; none left: an empty cell
    assert spread([0.5, None, math.nan, 0.7]).n == 2
    assert spread([None, math.nan]).n == 0 and spread([]).cell() == "-"


def test_the_relative_gain_is_a_signed_percentage_of_the_means():
    assert relative_gain(spread([0.55]), spread([0.5])) == "+10.0%"
    assert relative_gain(spread([0.45]), spread([0.5])) == "-10.0%"
    assert relative_gain(spread([0.5, 0.6]), spread([0.5])) == "+10.0%"
    assert relative_gain(spread([]), spread([0.5])) == "-"
    assert relative_gain(spread([0.5]), spread([0.0])) == "-"


# ---------------------------------------------------------------- noise-robustness


def noise_rows() -> list[TrialRow]:
    scores = {  # (loss, noise px) -> AUC of seeds 0 and 1
        ("bce", 0): (0.60, 0.62),
        ("nr", 0): (0.58, 0.60),
        ("bce", 50): (0.39, 0.41),
        ("nr", 50): (0.43, 0.45),
    }
    rows = [
        row({"loss.kind": loss, "label_noise": float(noise), "train.seed": seed}, auc)
        for (loss, noise), aucs in scores.items()
        for seed, auc in enumerate(aucs)
    ]
    # stopped early: no benchmark score counts, even one that reads high
    stopped = {"loss.kind": "nr", "label_noise": 50.0, "train.seed": 2}
    return [*rows, row(stopped, 0.99, status="stopped")]


def test_noise_robustness_reports_mean_and_spread_and_the_gain_at_the_largest_noise(tmp_path):
    text, figure = noise_robustness.report(noise_rows(), ExperimentConfig())
    assert table_line(text, "0") == ["0", "0.610 ± 0.014", "0.590 ± 0.014", "-3.3%"]
    assert table_line(text, "50") == ["50", "0.400 ± 0.014", "0.440 ± 0.014", "+10.0%"]
    assert "Relative NR-over-BCE gain at 50 px: **+10.0%**" in text
    assert "8 of 9 trials finished; seeds [0, 1, 2]" in text
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    bce, nr = axes.containers  # one error-bar plot per loss: noise -> mean AUC
    assert (bce.get_label(), nr.get_label()) == ("BCE", "NR")
    assert list(bce.lines[0].get_xdata()) == [0.0, 50.0]
    assert list(bce.lines[0].get_ydata()) == pytest.approx([0.61, 0.40])
    assert list(nr.lines[0].get_ydata()) == pytest.approx([0.59, 0.44])
    figure.savefig(tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_noise_robustness_reports_the_largest_noise_both_losses_finished():
    # the NR trials at 50 px failed: the gain is given at 0 px, the 50 px line is blank
    rows = [
        r for r in noise_rows() if r.point["label_noise"] == 0.0 or r.point["loss.kind"] == "bce"
    ]
    text, _ = noise_robustness.report(rows, ExperimentConfig())
    assert "Relative NR-over-BCE gain at 0 px: **-3.3%**" in text
    assert table_line(text, "50")[2:] == ["-", "-"]
    text, _ = noise_robustness.report([], ExperimentConfig())
    assert "No noise level has a finished trial of both losses" in text


# ---------------------------------------------------------------- unsupervised-vs-supervised


def test_supervised_gap_reports_pul_as_a_share_of_the_supervised_auc(tmp_path):
    rows = [
        row({"arm": "alexpul", "train.seed": 0}, 0.39, p20=0.50),
        row({"arm": "alexpul", "train.seed": 1}, 0.41, p20=0.52),
        row({"arm": "siamfc-supervised", "train.seed": 0}, 0.49, p20=0.60),
        row({"arm": "siamfc-supervised", "train.seed": 1}, 0.51, p20=0.62),
        row({"arm": "alexpul", "train.seed": 2}, None, status="stopped"),
    ]
    cfg = ExperimentConfig()
    text, figure = supervised_gap.report(rows, cfg)
    assert table_line(text, "alexpul") == ["alexpul", "0.400 ± 0.014", "0.510 ± 0.014"]
    assert table_line(text, "siamfc-supervised")[1:] == ["0.500 ± 0.014", "0.610 ± 0.014"]
    assert "AlexPUL reaches **80%** of the supervised baseline's AUC" in text
    assert f"Both trained {cfg.sweep.tc.train.steps} stage-3 steps" in text
    assert f"stage 1 ({cfg.inputs.bd.train.steps} steps" in text
    figure.savefig(tmp_path / "gap.png")
    assert (tmp_path / "gap.png").stat().st_size > 0


def test_supervised_gap_without_a_supervised_score_gives_no_ratio():
    text, _ = supervised_gap.report(
        [row({"arm": "alexpul", "train.seed": 0}, 0.4)], ExperimentConfig()
    )
    assert "AlexPUL reaches **-** of" in text


# ---------------------------------------------------------------- ahm-vs-rss


def test_ahm_vs_rss_without_mlflow_reports_the_aucs_and_no_similarity(tmp_path):
    scores = {("ahm", 4): (0.44, 0.46), ("rss", 4): (0.40, 0.40), ("ahm", 8): (0.50, 0.50)}
    rows = [
        row({"strategy": strategy, "train.batch_size": size, "train.seed": seed}, auc)
        for (strategy, size), aucs in scores.items()
        for seed, auc in enumerate(aucs)
    ]
    text, figure = ahm_vs_rss.report(rows, ExperimentConfig(batch_sizes=[4, 8]), uri="")
    assert table_line(text, "4") == ["4", "0.450 ± 0.014", "0.400 ± 0.000", "+12.5%", "-", "-"]
    assert table_line(text, "8") == ["8", "0.500 ± 0.000", "-", "-", "-", "-"]
    assert len(figure.axes) == 2
    figure.savefig(tmp_path / "ahm.png")
    assert (tmp_path / "ahm.png").stat().st_size > 0


# ---------------------------------------------------------------- config and CLI


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(seeds=[]), "give at least one training seed each"),
        (dict(noise_levels=[0.0, -5.0]), "noise_levels must be >= 0 pixels"),
        (dict(noise_levels=[]), "noise_levels must be >= 0 pixels"),
        (dict(batch_sizes=[1, 4]), r"batch_sizes must be >= 2 \(a batch holds negatives\)"),
        (dict(truth_pairs=0), "truth_pairs must be >= 1"),
    ],
)
def test_an_experiment_config_refuses_settings_that_compare_nothing(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**kwargs)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-claim"], "no experiment named 'no-such-claim': choose one of noise-robustness"),
        (["ahm-vs-rss", "--budget", "huge"], "no budget named 'huge': choose one of full, small"),
        (["ahm-vs-rss", "--config", "{missing}"], "config file not found: {missing}"),
        (["ahm-vs-rss", "seeds=[]"], "give at least one training seed each"),
    ],
)
def test_the_experiment_command_refuses_in_one_line_and_creates_no_work_folder(
    capsys, tmp_path, argv, message
):
    missing = str(tmp_path / "missing.yaml")
    work = tmp_path / "w"
    argv = [arg.format(missing=missing) for arg in argv]
    code = main(["experiment", *argv, "--work", str(work)])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("pul: error: "), err
    assert message.format(missing=missing) in err
    assert not work.exists()


def test_both_budget_presets_load():
    small = load_config(ExperimentConfig, PRESETS / "small.yaml")
    full = load_config(ExperimentConfig, PRESETS / "full.yaml")
    assert small.noise_levels == [0, 10, 20, 30, 40, 50] == full.noise_levels
    assert (small.seeds, small.noise_seeds, small.batch_sizes) == ([0, 1, 2], [0, 1], [4, 8])
    assert small.sweep.tc.train.steps == 200 and small.sweep.tc.model.width == 0.25
    assert full.seeds == [0, 1, 2] and full.sweep.tc.train.use_gpu
    # the trials' pools hold two batches at every batch size compared
    for cfg in (small, full):
        assert cfg.sweep.tc.pool >= 2 * max(cfg.batch_sizes + [cfg.sweep.tc.train.batch_size])


def test_each_experiment_sweeps_what_its_claim_compares_on_its_inputs():
    from jobs.experiments.inputs import Inputs

    cfg = load_config(ExperimentConfig, ROOT / "configs/experiments/small.yaml")
    inputs = Inputs("/clips", "/bd.pt", "/mined", "/truth", "/bench", "got10k", "sqlite:///x")
    noise = noise_robustness.sweep_config(cfg, inputs)
    assert noise.space == {
        "arm": ["siamfc-fresh"],
        "loss.kind": ["bce", "nr"],
        "label_noise": [0.0, 10.0, 20.0, 30.0, 40.0, 50.0],
        "train.seed": [0, 1],
    }
    # SiamFC from a fresh network, its recipe, the loss alone differing (supplement Sec. D)
    assert (noise.data, noise.arms, noise.tc.loss.noise) == (
        "/truth",
        {"siamfc-fresh": {"init": ""}},
        0.0,
    )
    assert (noise.tc.strategy, noise.tc.contrastive_weight) == ("rss", 0.0)
    assert (noise.benchmark, noise.benchmark_format) == ("/bench", "got10k")
    assert (noise.searcher, noise.scheduler, noise.register) == ("grid", "fifo", False)
    ahm = ahm_vs_rss.sweep_config(cfg, inputs)
    assert ahm.space["strategy"] == ["ahm", "rss"] and ahm.data == "/mined"
    assert ahm.space["train.seed"] == [0, 1, 2]
    gap = supervised_gap.sweep_config(cfg, inputs)
    assert gap.arms["siamfc-supervised"]["data"] == "/truth"
    assert gap.arms["siamfc-supervised"]["init"] == ""
    assert gap.arms["alexpul"]["data"] == "/mined"
