"""PUL end to end on tiny data: stage 1 (BD) -> stage 2 (mining) -> stage 3 (TC), each
training stage on Ray Train with 2 workers, logged to a real MLflow SQLite store; stage 3
must have learned: on held-out pairs, a lower response loss than its stage-1 start and
response peaks near the true target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from jobs.config import from_dict
from jobs.mine import MineJobConfig, mine
from jobs.train.bd import BDConfig
from jobs.train.job import train_stage
from jobs.train.tc import TCConfig
from pul.losses import response_loss
from pul.pairs import PairConfig, make_pair
from pul.weights import load_weights
from shards.synth import SynthConfig, render_video
from shards.verify import verify_set
from tests.helpers import TINY_BENCH, TINY_MINING, TINY_TRAIN, TWO_SMALL_WORKERS, tiny_clips

STRIDE = 8
"""Search-crop pixels per response cell (the network's total stride)."""


def held_out_pairs(gaps=(2, 4, 8)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ground-truth pairs (templates, search crops, target offsets) of the benchmark videos,
    whose photographs and textures the training videos never show; cropped as stage 3 crops
    its pairs, the target shifted up to 32 px from the centre (a seeded draw), so that a map
    peaking at its centre is 25 px off on average."""
    cfg = SynthConfig(**TINY_BENCH, seed=4)
    crops = PairConfig(max_shift=32)
    rng = np.random.default_rng(0)
    z, x, offsets = [], [], []
    for video in range(cfg.videos):
        frames, boxes = render_video(cfg, video)
        for gap in gaps:
            for t in range(len(frames) - gap):
                if min(boxes[t][2:]) > 0 and min(boxes[t + gap][2:]) > 0:
                    pair = make_pair(
                        frames[t], boxes[t], frames[t + gap], boxes[t + gap], crops, rng
                    )
                    z.append(pair[0])
                    x.append(pair[1])
                    offsets.append(pair[2])

    def chw(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()

    return chw(z), chw(x), torch.from_numpy(np.stack(offsets))


@torch.no_grad()
def held_out_scores(model_file, pairs) -> tuple[float, float]:
    """(SiamFC's balanced BCE of the responses against the true target positions, the mean
    distance in search-crop pixels from each response's peak to the true position)."""
    z, x, offsets = pairs
    responses = load_weights(model_file)(z, x)  # B x 1 x S x S
    size = responses.shape[-1]
    peak = responses.flatten(1).argmax(1)
    cells = torch.stack([peak % size, peak // size], 1).float() - (size - 1) / 2
    error = (cells * STRIDE - offsets).norm(dim=1).mean()
    return float(response_loss("bce", responses, offsets, stride=STRIDE)), float(error)


@pytest.mark.slow
@pytest.mark.ray
def test_stage_1_2_3_on_tiny_data(tmp_path, ray_local):
    clips = tiny_clips(tmp_path)
    mlflow = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "e2e"}

    bd = from_dict(
        BDConfig,
        {
            "data": str(clips),
            "model": {"width": 0.25},
            "pool": 16,
            **mlflow,
            "train": {**TINY_TRAIN, **TWO_SMALL_WORKERS},
        },
    )
    bd_model = train_stage("bd", bd, tmp_path / "runs" / "bd")
    assert (tmp_path / "runs" / "bd" / "ahm_batches.png").stat().st_size > 10_000

    mined = mine(
        from_dict(
            MineJobConfig,
            {"data": str(clips), "model": str(bd_model), "workers": 1, "mining": TINY_MINING},
        ),
        tmp_path / "pairs",
        command=["t"],
        progress=False,
    )
    assert mined.kind == "pairs" and mined.samples > 0
    reports = verify_set(tmp_path / "pairs")  # every pair sample decodes
    assert all(r.ok for r in reports) and sum(r.samples for r in reports) == mined.samples

    tc = from_dict(
        TCConfig,
        {
            "data": str(tmp_path / "pairs"),
            "init": str(bd_model),
            "model": {"width": 0.25},
            "pool": 8,
            "gap_start": 2,
            "gap_end": 8,
            "contrastive_weight": 0.1,
            **mlflow,
            "train": {"steps": 4, "batch_size": 4, "checkpoint_every": 2, **TWO_SMALL_WORKERS},
        },
    )
    tc_model = train_stage("tc", tc, tmp_path / "runs" / "tc")

    client = MlflowClient(mlflow["tracking_uri"])
    run_id = json.loads((tmp_path / "runs" / "tc" / "mlflow_run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["pul.stage"] == "tc" and run.data.params["loss.kind"] == "nr"
    for key in ("loss_response", "loss_contrastive", "loss"):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [0, 1, 2, 3]
        assert all(np.isfinite(m.value) for m in history)

    # What stage 3 did to its stage-1 start, on pairs it never saw. Measured: BCE 0.734 ->
    # 0.665, peak error 33 -> 8 px (a map peaking at its centre: 25 px) with the stages'
    # data made on the training thread; with their loader processes (other random streams)
    # the stage-1 start scored better and the gain was smaller. In 4 steps most of
    # it is batch norm's statistics, re-estimated on stage-3 crops (stage 1's come from
    # patches): a run whose optimizer never steps scores about as well, and only the last
    # check, that the weights moved, fails for it.
    pairs = held_out_pairs()
    assert len(pairs[0]) >= 80
    bce_before, error_before = held_out_scores(bd_model, pairs)
    bce_after, error_after = held_out_scores(tc_model, pairs)
    assert bce_after < bce_before - 0.03, (bce_before, bce_after)
    assert error_after < min(16.0, 0.7 * error_before), (error_before, error_after)
    start = dict(load_weights(bd_model).named_parameters())  # weights, not batch-norm stats
    trained = dict(load_weights(tc_model).named_parameters())
    moved = max(float((trained[k] - start[k]).abs().max()) for k in trained)
    assert moved > 1e-4  # measured 9.6e-4 (0 when the optimizer never steps)
