"""Content hashes of input files and folders, so "same inputs" means the same bytes.

Hashing every video and frame on every rerun would cost as much as reading them, so each
file's sha256 is remembered in a small cache keyed by its path and stat fingerprint (size,
mtime_ns, ctime_ns, inode). Writing a file changes its ctime, which a user cannot set back
(unlike mtime, which `touch -d` or `cp -p` can), so a matching fingerprint means the bytes
are the ones hashed: the fast path stays exact. A file whose fingerprint changed is hashed
again, even if only its metadata moved.

The cache lives in $PUL_CACHE_DIR (default ~/.cache/pul)/content-hashes.json. It is only a
cache: deleting it costs one re-hash of each input, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

CACHE_FILE = "content-hashes.json"
_CHUNK = 1 << 20
_lock = threading.Lock()


def cache_path() -> Path:
    root = os.environ.get("PUL_CACHE_DIR") or Path.home() / ".cache" / "pul"
    return Path(root) / CACHE_FILE


def file_digest(path: str | Path) -> str:
    """sha256 of one file's bytes (hex), from the cache when its fingerprint is unchanged."""
    return files_digests([path])[0]


def files_digests(paths: Iterable[str | Path]) -> list[str]:
    """sha256 of each file, reading the cache once and writing it at most once."""
    paths = [Path(p).resolve() for p in paths]
    with _lock:
        cache = _read_cache()
        digests, changed = [], False
        for path in paths:
            stamp = _fingerprint(path)
            known = cache.get(str(path))
            if known is not None and known[0] == stamp:
                digests.append(known[1])
                continue
            digest = _sha256(path)
            cache[str(path)] = [stamp, digest]
            digests.append(digest)
            changed = True
        if changed:
            _write_cache(cache)
    return digests


def tree_digest(path: str | Path) -> str:
    """One hash of a file, or of a folder's every file (relative path and bytes, sorted).

    Hidden files and folders (names starting with '.') are left out: they hold caches and
    staging, not content.
    """
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or folder: {path}")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    digests = files_digests(files)
    blob = "\n".join(
        f"{p.relative_to(path).as_posix()} {d}" for p, d in zip(files, digests, strict=True)
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _read_cache() -> dict[str, list]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}  # missing or damaged: only a cache, start again
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict[str, list]) -> None:
    target = cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Atomic replace: two processes writing at once lose an entry, never the file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".hashes-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home: hashing still works, only without the fast path
