"""Deterministic tar files: the same samples always give the same bytes.

WebDataset shards are plain tar files. Writing them with fixed metadata (mtime 0, root
owner, read-only mode) makes a shard a pure function of its samples, which is what lets an
interrupted pack resume and still produce byte-identical shards.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_member(name, len(data)), io.BytesIO(data))


def open_for_writing(path: Path) -> tarfile.TarFile:
    return tarfile.open(path, "w", format=tarfile.GNU_FORMAT)


def write_members(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Write a whole tar atomically: a crash never leaves a partial file under `path`."""
    tmp = path.with_name(path.name + ".part")
    with open_for_writing(tmp) as tar:
        for name, data in members:
            add_member(tar, name, data)
    tmp.replace(path)


def read_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular file in a tar, in stored order."""
    with tarfile.open(path, "r") as tar:
        for info in tar:
            if info.isfile():
                handle = tar.extractfile(info)
                yield info.name, handle.read() if handle else b""
