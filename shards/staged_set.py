"""A shard set written in two phases, so that any interruption resumes and nothing half-done
ever looks finished: what packing (clip shards) and mining (pair shards) share.

1. Staging: independent pieces of work are written, each atomically (a `.part` file, then a
   rename), into `OUT/.staging/`. A plan file there records the hash of everything that
   decides the set's bytes; a rerun with the same plan skips every staged piece, a rerun
   with another plan is refused (the staged work is kept for the run that made it).
2. Publishing: the shards move into OUT, then the manifest is written, last and atomically,
   and the staging is removed. A folder with a manifest is a finished set.

One process at a time writes a set: a second one started on the same folder is told so in
one line (an advisory lock in the staging folder), and the data stays correct either way.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shards.errors import ShardError
from shards.manifest import MANIFEST, Manifest, read_manifest, write_manifest

STAGING = ".staging"
PLAN = "plan.json"
LOCK = "lock"

log = logging.getLogger(__name__)


class StagedSet:
    """The folder `out` of a shard set whose bytes are decided by `plan_hash`."""

    def __init__(self, out: Path, plan_hash: str, what: str = "shard set") -> None:
        self.out = Path(out)
        self.plan_hash = plan_hash
        self.what = what
        """Words for messages: 'pack', 'mining'."""

    @property
    def staging(self) -> Path:
        return self.out / STAGING

    def staged(self, name: str) -> Path:
        return self.staging / name

    def finished(self) -> Manifest | None:
        """The finished set in `out` if it is this very one; None if there is none yet; a
        ShardError if `out` holds another set."""
        if not (self.out / MANIFEST).exists():
            return None
        manifest = read_manifest(self.out)
        if manifest.extra.get("plan_hash") != self.plan_hash:
            made_by = " ".join(manifest.command) or f"another {self.what}"
            raise ShardError(
                f"{self.out} already holds a different shard set (made by: {made_by}); "
                "choose another --out or delete it"
            )
        return manifest

    def missing_shards(self, manifest: Manifest) -> list[str]:
        """Shards the manifest lists that are gone or of another size."""
        return [
            s.name
            for s in manifest.shards
            if not (self.out / s.name).is_file() or (self.out / s.name).stat().st_size != s.bytes
        ]

    def reopen(self, lost: list[str]) -> None:
        """Turn a finished set that lost shards back into a staged one, to redo just those."""
        for name in lost:
            (self.out / name).unlink(missing_ok=True)
        # the plan first, then drop the manifest: the folder stays recognisably ours
        self._write_plan()
        (self.out / MANIFEST).unlink()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the set's lock while staging and publishing it: refuse a second writer."""
        fd = self._lock()
        try:
            yield
        finally:
            os.close(fd)

    def _lock(self) -> int:
        while True:
            self.staging.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.staging / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ShardError(
                    f"another {self.what} is writing {self.out} right now; wait for it to "
                    "finish (its result will be reused) or choose another --out"
                ) from None
            # The writer before us may have removed the staging (and this lock file) between
            # our open and our lock: then the lock is on a deleted file, so take a new one.
            try:
                if os.stat(self.staging / LOCK).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def start(self) -> None:
        """Create or resume the staging (inside `writing`)."""
        plan_file = self.staging / PLAN
        if plan_file.exists():
            if json.loads(plan_file.read_text()).get("plan_hash") != self.plan_hash:
                raise ShardError(
                    f"{self.out} holds an interrupted {self.what} of other inputs or settings; "
                    f"delete {self.staging} or choose another --out"
                )
        elif self.out.exists() and any(p.name != STAGING for p in self.out.iterdir()):
            raise ShardError(
                f"{self.out} is not empty and holds no shard set; choose an empty --out"
            )
        self._write_plan()
        leftovers = list(self.staging.glob("*.part")) + list(self.out.glob("*.part"))
        for leftover in leftovers:
            leftover.unlink()  # a writer killed mid-file; its retry or this rerun redoes it

    def publish(self, manifest: Manifest) -> Manifest:
        """Write the manifest (last: the set is now finished) and remove the staging."""
        write_manifest(self.out, manifest)
        self.discard()
        return manifest

    def discard(self) -> None:
        """Remove the staging: after publishing, or when the plan itself cannot succeed
        (nothing staged is worth keeping, and a rerun with other settings must not be
        refused because of it)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def _write_plan(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        (self.staging / PLAN).write_text(json.dumps({"plan_hash": self.plan_hash}))
