"""Rows of a benchmark run: printed as a Markdown table, written as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    what: str
    value: float
    unit: str
    reference: float | None = None
    """The same quantity measured the plain way in the same run (or the limit it is held
    against), None when there is none."""
    note: str = ""
    """How it was measured: batch, precision, workers."""


def markdown(rows: list[Row]) -> str:
    lines = ["| what | value | unit | reference | note |", "|---|---:|---|---:|---|"]
    for row in rows:
        ref = "" if row.reference is None else _number(row.reference)
        lines.append(f"| {row.what} | {_number(row.value)} | {row.unit} | {ref} | {row.note} |")
    return "\n".join(lines)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    """{**meta, "rows": [{"what", "value", "unit", "reference", "note"}, ...]}."""
    data = {**meta, "rows": [_rounded(asdict(row)) for row in rows]}
    path.write_text(json.dumps(data, indent=1) + "\n")


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
