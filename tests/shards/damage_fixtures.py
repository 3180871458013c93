"""Damaged copies of shard sets: one byte flipped inside a member, the tar left intact.

Also a small set of mined pairs written without mining (textured crops, real pair records),
for the readers, the verifier and stage 3.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import cv2
import numpy as np

from shards.manifest import Manifest, ShardEntry, sha256_file, write_manifest
from shards.pairs import X_OUT, Z_OUT, PairRecord, pair_sample, write_pair_shard


def flip_byte(shard: Path, member: str, at: float = 0.5) -> None:
    """Flip one byte of `member`'s payload (at that fraction of its length), in place."""
    with tarfile.open(shard) as tar:
        info = tar.getmember(member)
    data = bytearray(shard.read_bytes())
    data[info.offset_data + int(at * info.size)] ^= 0xFF
    shard.write_bytes(bytes(data))


def member_bytes(shard: Path, member: str) -> bytes:
    with tarfile.open(shard) as tar:
        return tar.extractfile(member).read()


def pair_record(clip: int, seed_index: int, gap: int = 2) -> PairRecord:
    """A pair whose boxes sit in the middle of its crops, as mining writes them."""
    return PairRecord(
        clip=f"synth_v{clip:02d}_clip0000",
        seed_index=seed_index,
        seed_frame=0,
        target_frame=gap,
        frames=(0, gap),
        gap=gap,
        seed_box=(40.0, 30.0, 32.0, 32.0),
        box=(42.0, 31.0, 32.0, 32.0),
        z_box=(95.5, 95.5, 64.0, 64.0),
        x_box=(160.0, 160.0, 64.0, 64.0),
        confidence=0.9,
        cycle_error=1.0 + 0.1 * seed_index,
    )


def textured_crops(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    z = cv2.resize(small, (Z_OUT, Z_OUT), interpolation=cv2.INTER_LINEAR)
    x = cv2.resize(small, (X_OUT, X_OUT), interpolation=cv2.INTER_LINEAR)
    return z, x


def make_pair_set(folder: Path, shards: int = 2, per_shard: int = 6, gap: int = 2) -> Path:
    """`shards` pair shards of `per_shard` pairs each and their manifest (kind 'pairs')."""
    folder.mkdir(parents=True)
    entries = []
    for s in range(shards):
        samples = [
            pair_sample(pair_record(s, i, gap), *textured_crops(100 * s + i))
            for i in range(per_shard)
        ]
        path = folder / f"pairs-{s:06d}.tar"
        write_pair_shard(path, samples)
        entries.append(ShardEntry(path.name, per_shard, path.stat().st_size, sha256_file(path)))
    extra = {"pairs": shards * per_shard, "pairs_per_gap": {str(gap): shards * per_shard}}
    write_manifest(folder, Manifest(kind="pairs", shards=entries, command=["t"], extra=extra))
    return folder
