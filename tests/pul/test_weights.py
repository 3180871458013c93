"""Model files: a round trip is exact, and nothing but a pul model file is accepted."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import torch

from pul.models import ModelConfig, build_model
from pul.weights import load_weights, save_weights


class RunsCode:
    """Unpickling this creates a folder: the marker that code ran while loading."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def trained_looking(cfg: ModelConfig) -> torch.nn.Module:
    """A model whose BN running statistics moved away from their initial values."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    with torch.no_grad():
        model(torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255)
        model.embed(torch.rand(2, 3, 127, 127) * 255)
    return model.eval()


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(width=0.25),
        ModelConfig(backbone="resnet22", width=0.25, out_scale=0.1, embed_dim=32),
    ],
)
def test_round_trip_gives_identical_outputs(tmp_path, cfg):
    model = trained_looking(cfg)
    path = save_weights(model, cfg, tmp_path / "sub" / "model.pt")
    loaded = load_weights(path)
    assert not loaded.training
    assert loaded.head.out_scale == cfg.out_scale
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(3, 3, 255, 255) * 255
    with torch.no_grad():
        assert torch.equal(loaded(z, x.narrow(0, 0, 1)), model(z, x.narrow(0, 0, 1)))
        assert torch.equal(loaded.embed(x), model.embed(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["model.pt"]  # no temp left


def test_file_holds_only_plain_data(tmp_path):
    cfg = ModelConfig(width=0.25)
    path = save_weights(build_model(cfg), cfg, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == {
        "backbone": "alexnet",
        "width": 0.25,
        "out_scale": 0.001,
        "embed_dim": 128,
    }
    assert payload["format"] == "pul-siamnet"


def test_pickled_callable_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "pul-siamnet", "x": RunsCode(str(marker))}, path)
    with pytest.raises(ValueError, match="not a pul model file") as err:
        load_weights(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    torch.save({"x": os.system}, path)
    with pytest.raises(ValueError, match="not a pul model file .it refers to code"):
        load_weights(path)


def test_garbage_is_refused(tmp_path):
    cfg = ModelConfig(width=0.25)
    good = save_weights(build_model(cfg), cfg, tmp_path / "good.pt").read_bytes()
    rng = np.random.default_rng(0)
    garbage = {f"random{i}.pt": rng.bytes(int(rng.integers(1, 5000))) for i in range(20)}
    garbage.update({"empty.pt": b"", "text.pt": b"hi\n", "truncated.pt": good[: len(good) // 2]})
    for name, data in garbage.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="not a pul model file") as err:
            load_weights(tmp_path / name)
        assert "\n" not in str(err.value)
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as zf:
        zf.writestr("archive/data.pkl", b"not a pickle")
    with pytest.raises(ValueError, match="not a pul model file"):
        load_weights(tmp_path / "zip.pt")


def test_other_torch_files_are_refused(tmp_path):
    cfg = ModelConfig(width=0.25)
    model = build_model(cfg)
    cases = {
        "state_dict.pt": model.state_dict(),  # a bare state dict: no config, no format tag
        "list.pt": [1, 2, 3],
        "bad_config.pt": {
            "format": "pul-siamnet",
            "version": 1,
            "config": {"backbone": "vgg"},
            "state_dict": {},
        },
        "wrong_shapes.pt": {
            "format": "pul-siamnet",
            "version": 1,
            "config": {"backbone": "alexnet", "width": 0.5},
            "state_dict": model.state_dict(),
        },
        "future.pt": {"format": "pul-siamnet", "version": 99, "config": {}, "state_dict": {}},
    }
    for name, payload in cases.items():
        torch.save(payload, tmp_path / name)
        with pytest.raises(ValueError, match="not a pul model file") as err:
            load_weights(tmp_path / name)
        assert "\n" not in str(err.value), name


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a pul model file .no such file"):
        load_weights(tmp_path / "nothing.pt")
    with pytest.raises(ValueError, match="no such file"):
        load_weights(tmp_path)  # a folder


def test_a_model_saved_without_projection_loads_without_one(tmp_path):
    from pul.models import ModelConfig, build_model
    from pul.weights import load_weights, save_weights

    cfg = ModelConfig(width=0.25)
    model = build_model(cfg)
    model.projection = None
    loaded = load_weights(save_weights(model, cfg, tmp_path / "m.pt"))
    assert loaded.projection is None
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
