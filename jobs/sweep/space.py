"""A sweep's search space: TCConfig fields -> the values a trial may take.

Written in YAML under the sweep's `space`, one entry per searched field of stage 3's
config, by its dotted path (flat `train.lr:` or nested `train: {lr: ...}`, as overrides
such as `space.train.lr=...` write it):

    space:
      loss.noise: [auto, 0, 8]               # a list: one of these values
      train.lr: {loguniform: [1.0e-4, 1.0e-2]}
      contrastive_weight: {uniform: [0.0, 0.3]}

A list is a choice (every value, for the grid searcher); `uniform` and `loguniform` are
ranges for the random and Optuna searchers. Every key and every listed value is checked
against TCConfig before anything runs, so a typo is one line at the start, not a failed
trial an hour in.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any

from jobs.config import ConfigError, from_dict, to_dict
from jobs.train.tc import TCConfig

RANGES = ("uniform", "loguniform")
"""The continuous distributions a space may name."""
OWNED = {
    "data", "init", "experiment", "tracking_uri", "register", "train.steps", "train.validate_every"
}  # fmt: skip
"""Fields the sweep sets itself, or that every trial must share: train.steps is the time axis
ASHA compares trials on, validate_every when they report the value compared."""
ARM = "arm"
"""The searched key naming one of the sweep's arms (bundles of settings, SweepConfig.arms)."""
ARM_PATHS = ("data", "init")
"""Inputs an arm may set for its trials, besides TCConfig fields."""


@dataclass(frozen=True)
class Dimension:
    """One searched field of TCConfig."""

    key: str
    """Dotted path in TCConfig, e.g. train.lr."""
    values: tuple[Any, ...] = ()
    """The values of a choice (empty for a range)."""
    low: float = 0.0
    """The lower end of a range."""
    high: float = 0.0
    """The upper end of a range."""
    log: bool = False
    """A range sampled uniformly in log space."""

    @property
    def is_choice(self) -> bool:
        return bool(self.values)


def dimensions(space: dict[str, Any]) -> list[Dimension]:
    """The dimensions of a space as written (see the module's docstring); ValueError with
    the key for anything that is not a list or a range."""
    return [_dimension(key, spec) for key, spec in _flat(space)]


def _flat(space: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, spec) of each entry, whether the space is written flat or nested."""
    out = []
    for key, spec in space.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict) and spec and not set(spec) & set(RANGES):
            out += _flat(spec, f"{path}.")
        else:
            out.append((path, spec))
    return out


def _dimension(key: str, spec: Any) -> Dimension:
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"space.{key}: an empty list of values")
        return Dimension(key, values=tuple(spec))
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGES:
        kind, ends = next(iter(spec.items()))
        low, high = _ends(key, kind, ends)
        return Dimension(key, low=low, high=high, log=kind == "loguniform")
    raise ValueError(
        f"space.{key}: expected a list of values or {{uniform|loguniform: [low, high]}}, "
        f"got {spec!r}"
    )


def _ends(key: str, kind: str, ends: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in ends)  # YAML 1.1 reads 1e-4 (no dot) as text
    except (TypeError, ValueError):
        raise ValueError(f"space.{key}: {kind} needs [low, high] numbers, got {ends!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"space.{key}: need finite low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"space.{key}: loguniform needs low > 0, got {low}")
    return low, high


def check(dims: list[Dimension], tc: TCConfig) -> None:
    """Every key a TCConfig field the sweep may vary, every value (and range end) one that
    field accepts: ValueError naming the first that is not."""
    if not dims:
        raise ValueError("the search space is empty: give space.KEY=[values] (a TCConfig field)")
    for dim in dims:
        _check_key(dim.key)
        # a range's ends are floats: an int field (batch size) is refused a range here
        for value in dim.values or (dim.low, dim.high):
            try:
                with_values(tc, {dim.key: value})
            except ConfigError as err:
                raise ValueError(f"space.{dim.key}: {err}") from None


def _check_key(key: str) -> None:
    if key in OWNED:
        raise ValueError(f"space.{key}: the sweep sets {key} itself; it cannot be searched")
    cls: Any = TCConfig
    for i, part in enumerate(key.split(".")):
        fields = (
            {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
        )
        if part not in fields:
            where = ".".join(key.split(".")[:i]) or "TCConfig"
            close = difflib.get_close_matches(part, list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"space.{key}: {where} has no field '{part}'{hint}")
        cls = typing.get_type_hints(cls)[part]
    if dataclasses.is_dataclass(cls):
        raise ValueError(f"space.{key}: a whole section; name one of its fields")


def check_arms(arms: dict[str, dict[str, Any]], arm_dims: list[Dimension], tc: TCConfig) -> None:
    """Arms and the `arm` key of the space go together; every arm's settings valid, every
    listed arm defined: ValueError naming the first that is not."""
    if not arm_dims:
        if arms:
            raise ValueError(f"arms {sorted(arms)} are defined but the space has no '{ARM}' key")
        return
    listed = arm_dims[0].values
    if not listed:
        raise ValueError(f"space.{ARM}: a list of arm names, not a range")
    unknown = [name for name in listed if name not in arms]
    if unknown:
        raise ValueError(f"space.{ARM}: no arm named {unknown[0]!r} (defined: {sorted(arms)})")
    for name, settings in arms.items():
        fields = {k: v for k, v in _flat(settings or {}) if k not in ARM_PATHS}
        for key, value in fields.items():
            try:
                _check_key(key)
                with_values(tc, {key: value})
            except (ValueError, ConfigError) as err:
                raise ValueError(f"arms.{name}: {err}") from None


def arm_settings(arms: dict[str, dict[str, Any]], point: dict[str, Any]) -> dict[str, Any]:
    """A trial's point with its arm's settings in place of the arm's name (flat, dotted),
    the point's own keys taking precedence."""
    point = dict(point)
    name = point.pop(ARM, None)
    if name is None:
        return point
    return {**dict(_flat(arms[name] or {})), **point}


def with_values(tc: TCConfig, point: dict[str, Any]) -> TCConfig:
    """`tc` with each dotted key of `point` set to its value (checked as a config is)."""
    data = to_dict(tc)
    for key, value in point.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return from_dict(TCConfig, data)


def tune_space(dims: list[Dimension], grid: bool) -> dict[str, Any]:
    """The Ray Tune param space: grid_search over every choice (grid), or distributions
    Tune samples and OptunaSearch translates (random, optuna)."""
    from ray import tune

    space: dict[str, Any] = {}
    for dim in dims:
        if grid:
            space[dim.key] = tune.grid_search(list(dim.values))
        elif dim.is_choice:
            space[dim.key] = tune.choice(list(dim.values))
        else:
            space[dim.key] = (tune.loguniform if dim.log else tune.uniform)(dim.low, dim.high)
    return space
