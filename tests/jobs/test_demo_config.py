"""`make demo` reads the bundled preset: it must be where `pul demo` looks for it."""

from __future__ import annotations

from jobs.cli.demo import DEFAULT_CONFIG
from jobs.config import load_config
from jobs.pipeline.config import PipelineConfig
from shards.footage import FOOTAGE


def test_pul_demo_finds_and_reads_the_bundled_preset():
    assert DEFAULT_CONFIG.is_file(), DEFAULT_CONFIG
    cfg = load_config(PipelineConfig, DEFAULT_CONFIG)
    assert cfg.bd.train.steps == 500 and cfg.tc.train.steps == 700
    assert cfg.data.footage == ["bikes", "carphone_pristine", "cityCC0"]
    assert set(cfg.data.footage) <= set(FOOTAGE)  # each is listed in README's table
