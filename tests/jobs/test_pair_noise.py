"""Stage 3's noise per pair: `loss.noise: pair` narrows the estimated std by each pair's
cycle error, the estimate's fallbacks warn in the log, and the noise trained with is
logged (one line, the run's params, a per-step metric)."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from torch import nn

import jobs.train.job
from jobs.train.config import TrainConfig
from jobs.train.job import run_stage
from jobs.train.pair_noise import estimate_noise, relative_cycle_errors
from jobs.train.tc import TCConfig, TCStage
from pul.losses import LossConfig, sigma_from_cycle_errors
from tests.jobs.test_label_noise import first_chunk
from tests.shards.damage_fixtures import make_pair_set, pair_record

CROP_SCALE = 64 * 127 / 128
"""Search-crop pixels per unit of relative error for make_pair_set's 64 x 64 x_box:
sqrt(w h) x exemplar / context_size, with context_size(64, 64) = sqrt(128 x 128)."""
SEED_SIZE = 32.0
"""sqrt(w h) of make_pair_set's seed boxes (32 x 32): the unit of the relative errors."""


@pytest.fixture
def pairs(tmp_path):
    return make_pair_set(tmp_path / "pairs")  # 12 pairs, cycle errors 1.0 + 0.1 i px


def stage(pairs, noise="auto", label_noise: float = 0.0) -> TCStage:
    cfg = TCConfig(
        data=str(pairs),
        loss=LossConfig(noise=noise),
        label_noise=label_noise,
        pool=32,
        train=TrainConfig(batch_size=8),
    )
    return TCStage(cfg)


def estimated_rel() -> float:
    """noise auto's estimate on make_pair_set (no threshold recorded: untruncated)."""
    errors = [(1.0 + 0.1 * i) / SEED_SIZE for _ in range(2) for i in range(6)]
    return sigma_from_cycle_errors(np.array(errors))


def test_pair_noise_narrows_each_pairs_std_by_its_own_cycle_error(pairs):
    rel = estimated_rel()
    per_pair = stage(pairs, noise="pair")
    assert per_pair.noise.rel == pytest.approx(rel)
    near, far = pair_record(0, 0), pair_record(0, 5)  # cycle errors 1.0 and 1.5 px
    sigma, e = rel * CROP_SCALE, 1.5 / SEED_SIZE * CROP_SCALE
    # sqrt(sigma^2 / 2 + |e|^2 / 8), both in the pair's search-crop pixels
    assert per_pair.sigma_px(far) == pytest.approx(math.sqrt(sigma**2 / 2 + e**2 / 8), rel=1e-5)
    assert per_pair.sigma_px(near) < per_pair.sigma_px(far) < sigma
    # auto: one std for every pair of a box shape, whatever its cycle error
    shared = stage(pairs, noise="auto")
    assert shared.sigma_px(near) == shared.sigma_px(far) == pytest.approx(sigma)


def test_pair_noise_adds_label_noise_in_squares(pairs):
    record = pair_record(1, 2)
    alone = stage(pairs, noise="pair").sigma_px(record)
    assert stage(pairs, noise="pair", label_noise=5.0).sigma_px(record) == pytest.approx(
        math.hypot(alone, 5.0)
    )


def test_the_loader_hands_out_each_pairs_own_std(pairs):
    per_pair = stage(pairs, noise="pair")
    chunk, keys = first_chunk(pairs, per_pair)
    by_key = {r.key: r for r in (pair_record(s, i) for s in range(2) for i in range(6))}
    expected = [per_pair.sigma_px(by_key[key]) for key in keys]
    assert chunk["sigma"].numpy() == pytest.approx(expected, rel=1e-6)
    assert len(set(np.round(expected, 6))) > 1  # the pairs' errors differ, so do their stds


def test_fewer_than_10_pairs_fall_back_to_half_the_threshold_and_say_so(tmp_path, caplog):
    few = make_pair_set(tmp_path / "few", per_shard=4)  # 8 pairs
    with caplog.at_level(logging.WARNING, logger="jobs.train.pair_noise"):
        tc = stage(few)
    assert tc.noise.rel == pytest.approx(0.05) and tc.noise.how == "few_pairs"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "fallback few_pairs" in warning.message and "only 8 mined pairs" in warning.message
    assert "sigma = 0.05 x sqrt(w h)" in warning.message
    assert tc.resolved["noise_estimate"] == "few_pairs"


def test_errors_crowding_the_threshold_fall_back_to_the_untruncated_estimate(caplog):
    records = [dataclasses.replace(pair_record(0, i), cycle_error=3.0) for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="jobs.train.pair_noise"):
        estimate = estimate_noise(records, threshold=0.1)  # 3.2 px on 32 px seed boxes
    untruncated = sigma_from_cycle_errors(relative_cycle_errors(records))
    assert (estimate.how, estimate.pairs) == ("crowded", 12)
    assert estimate.rel == pytest.approx(untruncated)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "fallback crowded" in warning.message and f"{untruncated:.4g}" in warning.message


def test_an_estimate_below_the_threshold_undoes_it_without_a_warning(caplog):
    records = [pair_record(s, i) for s in range(2) for i in range(6)]
    with caplog.at_level(logging.WARNING, logger="jobs.train.pair_noise"):
        estimate = estimate_noise(records, threshold=0.1)
    errors = relative_cycle_errors(records)
    assert estimate.how == "truncated"
    assert estimate.rel == pytest.approx(sigma_from_cycle_errors(errors, max_error_px=0.1))
    assert estimate.rel > sigma_from_cycle_errors(errors)  # the truncation's bias undone
    assert not caplog.records


def test_the_resolved_noise_is_said_in_one_log_line(pairs, caplog):
    with caplog.at_level(logging.INFO, logger="jobs.train.tc"):
        tc = stage(pairs, noise="pair")
    (line,) = [r.message for r in caplog.records if r.name == "jobs.train.tc"]
    assert line.startswith(f"loss.noise=pair: sigma = {estimated_rel():.4g} x sqrt(w h)")
    assert "(untruncated, from 12 pairs)" in line
    assert f"{tc.resolved['noise_sigma_px_mean']:.3g} px mean" in line


def test_a_number_of_pixels_is_resolved_without_reading_a_pair(pairs):
    tc = stage(pairs, noise=8.0, label_noise=6.0)
    assert tc.noise is None
    assert tc.resolved == {"noise_sigma_px_mean": 10.0, "noise_sigma_px_median": 10.0}


def test_the_run_records_the_resolved_noise_as_params(pairs, tmp_path, monkeypatch):
    def fit(*args, **kwargs):
        raise RuntimeError("stop after the params")  # no training needed to see them

    monkeypatch.setattr(jobs.train.job, "fit", fit)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tc = stage(pairs, noise="pair")
    cfg = dataclasses.replace(tc.cfg, tracking_uri=uri)
    with pytest.raises(RuntimeError, match="stop after the params"):
        run_stage("tc", tc, cfg, str(pairs), tmp_path / "runs" / "tc")
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("pul").experiment_id])
    params = run.data.params
    assert params["loss.noise"] == "pair"
    assert float(params["noise_rel"]) == pytest.approx(estimated_rel())
    assert (params["noise_estimate"], params["noise_pairs"]) == ("untruncated", "12")
    sigmas = tc.sigmas_px([pair_record(s, i) for s in range(2) for i in range(6)])
    assert float(params["noise_sigma_px_mean"]) == pytest.approx(sigmas.mean())
    assert float(params["noise_sigma_px_median"]) == pytest.approx(np.median(sigmas))


class ZeroResponses(nn.Module):
    """A stand-in tracker: flat 17 x 17 responses, no view embeddings."""

    def forward(self, z, x, views):
        return torch.zeros(len(z), 1, 17, 17, requires_grad=True), None


def test_each_step_logs_the_mean_std_of_its_batch(pairs):
    batch = {
        "z": torch.zeros(3, 3, 8, 8),
        "x": torch.zeros(3, 3, 8, 8),
        "offset": torch.zeros(3, 2),
        "sigma": torch.tensor([2.0, 4.0, 9.0]),
    }
    _, metrics = stage(pairs, noise="pair").loss(ZeroResponses(), batch)
    assert float(metrics["noise_sigma_px"]) == pytest.approx(5.0)
