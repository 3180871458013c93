"""Skip-if-done steps: an output folder is named by the hash of everything that decides it.

A step's key hashes its inputs' content (shard-manifest lineages, model-file sha256), its
config and the code version. Its output lives in `WORK/<step>-<key[:10]>`, finished when
STEP.json is written (last). A rerun computes the same key, finds STEP.json and skips the
step; an interrupted step finds its folder unfinished and resumes inside it (every job the
pipeline calls is resumable on its own); a changed input or config gets a new folder, so
nothing a previous run made is overwritten.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD = "STEP.json"


def step_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Step:
    name: str
    key: str
    folder: Path

    @property
    def done(self) -> bool:
        return (self.folder / RECORD).exists()

    def record(self) -> dict[str, Any]:
        return json.loads((self.folder / RECORD).read_text())


def step(work: Path, name: str, **parts: Any) -> Step:
    key = step_key(step=name, **parts)
    return Step(name, key, work / f"{name}-{key[:10]}")


def run_step(
    s: Step, body: Callable[[Path], dict[str, Any]], announce: Callable[[str], None]
) -> dict[str, Any]:
    """Run `body(folder)` unless the step already finished; returns the step's record.

    `body` returns plain facts about its output (paths, counts, metrics) that later steps
    and the final summary read from the record, so a skipped step still provides them.
    """
    if s.done:
        announce(f"done before, skipped ({s.folder})")
        return s.record()
    s.folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    facts = body(s.folder)
    record = {"step": s.name, "key": s.key, "seconds": round(time.time() - started, 1), **facts}
    tmp = s.folder / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(s.folder / RECORD)
    return record
