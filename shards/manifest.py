"""The manifest of a shard set: what is in it, how to check it, and what made it.

`manifest.json` sits beside the shards and is written last, atomically: a folder without
one is not a shard set (an interrupted pack leaves none). Its `lineage` hash depends only
on the shards' bytes, so it names the data exactly wherever the set is copied; MLflow runs
record it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shards.errors import ShardError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DAMAGED_SUFFIX = "+damaged"
"""Appended to a lineage by whatever read a damaged copy of the set it names (a training
run's `pul.data_lineage`, a pair set's `source_lineage`): the bytes were not the set's."""


@dataclass
class ShardEntry:
    name: str
    samples: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    kind: str
    """'clips' (pack) or 'pairs' (mining)."""
    shards: list[ShardEntry]
    command: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific totals, e.g. videos and frames for clips."""
    format_version: int = FORMAT_VERSION

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    @property
    def lineage(self) -> str:
        digest = hashlib.sha256()
        for shard in self.shards:
            digest.update(f"{shard.name}:{shard.sha256}\n".encode())
        return digest.hexdigest()

    def to_json(self) -> str:
        data = asdict(self)
        data["totals"] = {"samples": self.samples, "bytes": self.bytes, "shards": len(self.shards)}
        data["lineage"] = self.lineage
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST
    tmp = path.with_name(MANIFEST + ".part")
    tmp.write_text(manifest.to_json())
    tmp.replace(path)
    return path


def read_manifest(folder: str | Path) -> Manifest:
    folder = Path(folder)
    if not folder.exists():
        raise ShardError(f"no such shard folder: {folder}")
    path = folder / MANIFEST if folder.is_dir() else folder
    if not path.is_file():
        raise ShardError(f"{folder} is not a shard set: {MANIFEST} is missing")
    try:
        data = json.loads(path.read_text())
        shards = [ShardEntry(**entry) for entry in data["shards"]]
        return Manifest(
            kind=data["kind"],
            shards=shards,
            command=data.get("command", []),
            config=data.get("config", {}),
            extra=data.get("extra", {}),
            format_version=data.get("format_version", FORMAT_VERSION),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ShardError(f"{path} is not a valid manifest ({err})") from None


def shard_paths(folder: str | Path) -> list[Path]:
    """The shard files of a set, in manifest order (the manifest is the source of truth)."""
    folder = Path(folder)
    return [folder / s.name for s in read_manifest(folder).shards]
