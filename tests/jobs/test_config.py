"""The typed config loader: presets, overrides, and one-line refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from jobs.config import (
    ConfigError,
    apply_overrides,
    describe,
    dump_yaml,
    field_docs,
    from_dict,
    load_config,
)
from shards.pack_config import PackConfig


@dataclass
class Inner:
    rate: float = 0.1
    """Learning rate."""
    steps: int = 10
    """How many steps."""


@dataclass
class Outer:
    name: str = "x"
    """A name."""
    mode: Literal["a", "b"] = "a"
    """The mode."""
    sizes: tuple[int, int] = (1, 2)
    """Two sizes."""
    inner: Inner = field(default_factory=Inner)
    """Nested section."""
    maybe: int | None = None
    """Optional."""

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise ValueError("name must not be 'bad'")


def test_nested_overrides_and_types():
    cfg = from_dict(Outer, apply_overrides({}, ["inner.rate=0.5", "sizes=[3, 4]", "mode=b"]))
    assert cfg.inner.rate == 0.5 and cfg.inner.steps == 10
    assert cfg.sizes == (3, 4)
    assert cfg.mode == "b"


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert from_dict(Inner, {"rate": 1}).rate == 1.0
    with pytest.raises(ConfigError, match="inner.steps: expected int, got 1.5"):
        from_dict(Outer, {"inner": {"steps": 1.5}})


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'inner.rat' \(did you mean 'inner.rate'\?\)"
    ):
        from_dict(Outer, apply_overrides({}, ["inner.rat=3"]))


def test_literal_and_tuple_length_are_checked():
    with pytest.raises(ConfigError, match=r"mode: expected one of \['a', 'b'\], got 'c'"):
        from_dict(Outer, {"mode": "c"})
    with pytest.raises(ConfigError, match="sizes: expected 2 values, got 3"):
        from_dict(Outer, {"sizes": [1, 2, 3]})


def test_validation_error_is_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, {"name": "bad"})
    assert "\n" not in str(info.value) and "name must not be 'bad'" in str(info.value)


def test_optional_accepts_none_and_value():
    assert from_dict(Outer, {"maybe": None}).maybe is None
    assert from_dict(Outer, {"maybe": 3}).maybe == 3


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected key.sub=value"):
        apply_overrides({}, ["novalue"])


def test_yaml_section_then_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("pack:\n  clip_len: 12\n  max_side: 200\n")
    cfg = load_config(PackConfig, preset, "pack", ["max_side=100"])
    assert (cfg.clip_len, cfg.max_side) == (12, 100)
    roundtrip = tmp_path / "r.yaml"
    roundtrip.write_text("pack:\n" + "".join(f"  {line}\n" for line in dump_yaml(cfg).splitlines()))
    assert load_config(PackConfig, roundtrip, "pack") == cfg


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(PackConfig, tmp_path / "nope.yaml")
    broken = tmp_path / "b.yaml"
    broken.write_text("pack: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(PackConfig, broken, "pack")


def test_field_docs_and_describe():
    docs = field_docs(Outer)
    assert docs["inner"] == "Nested section." and docs["maybe"] == "Optional."
    lines = describe(Outer)
    assert "inner.rate (float, default 0.1): Learning rate." in lines
    assert any(line.startswith("mode (a|b, default 'a')") for line in lines)


def test_every_pack_field_is_documented():
    docs = field_docs(PackConfig)
    assert set(docs) == {f for f in vars(PackConfig()) if not f.startswith("_")}


def test_exponent_without_a_dot_is_a_float():
    # PyYAML (YAML 1.1) reads 1e-4 as a string; users write it anyway
    assert from_dict(Inner, apply_overrides({}, ["rate=1e-4"])).rate == 1e-4
    with pytest.raises(ConfigError, match="rate: expected float, got 'fast'"):
        from_dict(Inner, {"rate": "fast"})


@dataclass
class Stage:
    inner: Inner = field(default_factory=lambda: Inner(rate=0.5, steps=99))
    """A section whose owner overrides the section's own defaults."""


def test_a_nested_override_keeps_the_owners_other_defaults():
    cfg = from_dict(Stage, apply_overrides({}, ["inner.steps=5"]))
    assert (cfg.inner.rate, cfg.inner.steps) == (0.5, 5)
    assert from_dict(Stage, {}).inner == Inner(rate=0.5, steps=99)
