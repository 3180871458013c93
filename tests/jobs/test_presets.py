"""Every YAML preset under configs/ loads the way its command reads it, and the presets
that stand for the paper's trackers hold the paper's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.cli.config_show import CONFIGS
from jobs.config import load_config, read_yaml
from jobs.pipeline.config import PipelineConfig
from pul.models import build_model
from pul.tracker import TrackerConfig, siamdw_config, tracker_config_for

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

READ_BY = {
    "alexpul.yaml": "pipeline",
    "respul.yaml": "pipeline",
    "cpu-hour.yaml": "pipeline",
    "demo.yaml": "pipeline",
    "supervised-cpu.yaml": "supervised",
    "experiments/full.yaml": "experiment",
    "experiments/small.yaml": "experiment",
    "sweeps/noise-batch.yaml": "tune",
    "sweeps/tiny-cpu.yaml": "tune",
}
"""Preset -> the job whose command reads it (`pul pipeline` and `pul experiment` read the
whole file; the others their job's section, as `pul config resolve` does)."""

WHOLE_FILE = ("pipeline", "experiment")
PIPELINES = sorted(name for name, job in READ_BY.items() if job == "pipeline")


def preset(name: str) -> PipelineConfig:
    return load_config(PipelineConfig, CONFIG_DIR / name)


def test_every_preset_is_listed_here():
    found = {str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob("*.yaml")}
    assert found == set(READ_BY)


@pytest.mark.parametrize("name", sorted(READ_BY))
def test_every_preset_loads_as_its_command_reads_it(name):
    path, job = CONFIG_DIR / name, READ_BY[name]
    if job not in WHOLE_FILE:  # a missing section would load the defaults without a word
        assert job in read_yaml(path), f"{name} has no {job!r} section"
    section = None if job in WHOLE_FILE else job
    cfg = load_config(CONFIGS[job], path, section)
    assert isinstance(cfg, CONFIGS[job])


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_presets_say_what_they_are_for_and_how_to_run_them(name):
    text = (CONFIG_DIR / name).read_text()
    assert text.startswith("# ")
    assert f"--config configs/{name}" in text
    cfg = preset(name)
    # stage 3 starts from the stage-1 model: the two must be the same network
    assert cfg.tc.model == cfg.bd.model
    assert cfg.tc.pairs.exemplar == cfg.bd.patches.size


@pytest.mark.parametrize(
    ("name", "backbone", "tracker"),
    [("alexpul.yaml", "alexnet", TrackerConfig()), ("respul.yaml", "resnet22", siamdw_config())],
)
def test_gpu_presets_train_the_papers_networks_at_full_width(name, backbone, tracker):
    cfg = preset(name)
    assert (cfg.tc.model.backbone, cfg.tc.model.width) == (backbone, 1.0)
    assert (cfg.tc.pairs.exemplar, cfg.tc.pairs.instance, cfg.bd.patches.size) == (127, 255, 127)
    assert (cfg.mine.mining.tracker.exemplar_size, cfg.mine.mining.tracker.instance_size) == (
        127,
        255,
    )
    for stage in (cfg.bd, cfg.tc):
        assert stage.train.use_gpu and stage.train.workers == 4
        assert stage.train.steps >= 50_000
    assert cfg.mine.device == "cuda"
    assert cfg.data.sources and cfg.benchmark.root  # the user's data, not the synthetic set
    assert cfg.data.synth is None and cfg.benchmark.synth is None
    # the trained network tracks as its paper's baseline does (evaluation, registry)
    assert tracker_config_for(build_model(cfg.tc.model)) == tracker


def test_respul_tracks_with_siamdws_procedure():
    cfg = preset("respul.yaml")
    assert tracker_config_for(build_model(cfg.tc.model)).procedure == "siamdw"
    assert cfg.tc.train.batch_size == 32 and cfg.tc.train.weight_decay == 1.0e-4


def test_the_cpu_hour_preset_is_the_demo_grown_to_an_hour():
    """Its stages run 3x (stage 1) and 5.7x (stage 3) the demo's steps, with the demo's
    slim network and batches on CPUs; the header's estimate rests on these numbers."""
    demo, hour = preset("demo.yaml"), preset("cpu-hour.yaml")
    assert (hour.bd.train.steps, hour.tc.train.steps) == (1500, 4000)
    assert (demo.bd.train.steps, demo.tc.train.steps) == (500, 700)
    for stage, demo_stage in ((hour.bd, demo.bd), (hour.tc, demo.tc)):
        assert stage.model.width == 0.25 and not stage.train.use_gpu
        assert stage.train.batch_size == demo_stage.train.batch_size
    assert hour.data.synth.videos == 160 and hour.benchmark.synth.videos == 30
    assert hour.benchmark.synth.split == "bench" and hour.data.synth.split == "train"
