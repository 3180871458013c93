"""Checking a shard set: every shard matches its manifest, and every sample decodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shards.manifest import read_manifest, sha256_file
from shards.pairs import decode_pair
from shards.reader import CorruptSample, to_clip
from shards.tario import read_members


@dataclass
class ShardReport:
    name: str
    problems: list[str] = field(default_factory=list)
    samples: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_set(
    folder: str | Path,
    decode: bool = True,
    on_shard: Callable[[ShardReport], None] | None = None,
) -> list[ShardReport]:
    """Check sizes and sha256 against the manifest, then (if `decode`) every sample's frames."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    reports = []
    for entry in manifest.shards:
        report = ShardReport(entry.name)
        path = folder / entry.name
        if not path.is_file():
            report.problems.append("missing")
        elif path.stat().st_size != entry.bytes:
            report.problems.append(f"size {path.stat().st_size} != manifest {entry.bytes}")
        elif sha256_file(path) != entry.sha256:
            report.problems.append("sha256 differs from the manifest")
        if path.is_file() and decode:
            _check_samples(path, report, entry.samples, CHECKS[manifest.kind])
        reports.append(report)
        if on_shard:
            on_shard(report)
    return reports


def _check_clip(sample: dict) -> None:
    clip = to_clip(sample)
    for i in range(len(clip)):
        clip.frame(i)


CHECKS: dict[str, Callable[[dict], object]] = {"clips": _check_clip, "pairs": decode_pair}
"""How a sample of each kind of shard set is fully decoded (raising CorruptSample)."""


def _check_samples(path: Path, report: ShardReport, expected: int, check) -> None:
    samples: dict[str, dict[str, bytes]] = {}
    try:
        for name, data in read_members(path):
            key, _, suffix = name.partition(".")
            samples.setdefault(key, {"__key__": key})[suffix] = data
    except Exception as err:  # noqa: BLE001 - any tar failure is the finding itself
        report.problems.append(f"unreadable tar ({type(err).__name__}: {err})")
    for key, sample in samples.items():
        try:
            check(sample)
        except CorruptSample as err:
            report.problems.append(str(err))
        except KeyError:
            report.problems.append(f"{key}: incomplete sample")
    report.samples = len(samples)
    if report.samples != expected:
        report.problems.append(f"{report.samples} samples != manifest {expected}")
