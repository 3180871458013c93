"""The training loop's validation hook, without Ray: when it runs, in which mode, where its
values go; and the sweep's validator (the held-out AUC) on a real tiny benchmark."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from jobs.train.config import TrainConfig
from jobs.train.loop import run_loop
from jobs.train.metrics_log import read_metrics
from jobs.train.sessions import LocalSession
from tests.helpers import TINY_BENCH, untrained_net

pytestmark = pytest.mark.usefixtures("one_thread")


class LineStage:
    """A one-weight regression with a batch norm: enough for the loop to train."""

    def __init__(self) -> None:
        self.modes: list[bool] = []
        """model.training at every training step."""

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))

    def batches(self, start_step: int, model: nn.Module, loader) -> Iterator[dict]:
        while True:
            yield {"x": torch.randn(8, 1)}

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        self.modes.append(model.training)
        return ((model(batch["x"]) - 2 * batch["x"]) ** 2).mean(), {}

    def export(self, model: nn.Module, folder: str) -> None:
        pass

    def picture(self, model_file, run_dir):
        raise NotImplementedError


class Recorder:
    """A validator that records how it was called and returns the step as its value."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, bool]] = []

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        self.calls.append((step, model.training, torch.is_grad_enabled()))
        return {"val_score": step / 10}


def _train(tmp_path, validate_every: int, **where) -> tuple[LineStage, list[dict]]:
    stage = where.pop("stage", LineStage())
    train = TrainConfig(
        steps=5, validate_every=validate_every, log_every=10, checkpoint_every=10,
        workers=1, loader_workers=0, lr=1e-2, lr_end=1e-3,
    )  # fmt: skip
    tmp_path.mkdir(exist_ok=True)
    config = {"stage": stage, "train": train, "mlflow": None, "run_dir": str(tmp_path), **where}
    run_loop(config, LocalSession(str(tmp_path), use_gpu=False))
    return stage, read_metrics(tmp_path)


def test_the_loop_validates_every_n_steps_and_at_the_last_in_eval_mode(tmp_path):
    recorder = Recorder()
    stage, rows = _train(tmp_path, validate_every=2, validate=recorder)
    # steps 2 and 4, and 5 (the last); in eval mode, without gradients
    assert recorder.calls == [(2, False, False), (4, False, False), (5, False, False)]
    assert all(stage.modes) and len(stage.modes) == 5  # every step trained in train mode
    logged = {row["step"]: row["val_score"] for row in rows if "val_score" in row}
    assert logged == {1: 0.2, 3: 0.4, 4: 0.5}  # at the loop's 0-based step, like the loss


def test_validate_every_0_never_validates_and_a_stage_may_carry_the_validator(tmp_path):
    recorder = Recorder()
    _train(tmp_path / "off", validate_every=0, validate=recorder)
    assert recorder.calls == []
    stage = LineStage()
    stage.validate = recorder  # how a sweep hands it through a launcher's config
    _train(tmp_path / "stage", validate_every=4, stage=stage)
    assert [step for step, _, _ in recorder.calls] == [4, 5]


def test_the_held_out_auc_tracks_a_few_frames_and_leaves_the_model_training(tmp_path):
    from jobs.sweep.validation import HeldOutAUC
    from shards.synth import SynthConfig, generate

    generate(SynthConfig(**TINY_BENCH, seed=4), tmp_path / "bench", False)
    validator = HeldOutAUC.on_benchmark(str(tmp_path / "bench"), "otb", sequences=2, frames=8)
    assert len(validator.refs) == 2
    net = untrained_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    shipped = pickle.loads(pickle.dumps(validator))  # as Ray ships it to a worker
    value = shipped(net, 3)["val_auc"]
    assert 0.0 < value <= 1.0
    assert shipped(net, 4)["val_auc"] == value  # the same model scores the same
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert len(pickle.dumps(shipped)) < 10_000  # the frames it read stay on the worker
