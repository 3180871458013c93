"""Anchor-based hard negative mining (AHM, supplement Sec. A and C) and its RSS baseline.

An AHM mini-batch is one random anchor patch and its batch_size - 1 nearest neighbours in
the current embedding space: with a small batch the negatives are still hard distractors.
RSS (random selection strategy), the ablation baseline, draws batch_size distinct patches.

The index is the embeddings of the whole patch pool (N x D, unit norm, float16 or float32, on
CPU or GPU), rebuilt by the caller from fresh embeddings (default once per epoch, METHOD.md).
Search is exact and brute force, a pass over the pool in chunks with a running top-k merge:
never more than Q x chunk similarities at once. Memory, in bytes (`index_bytes`):

    N*D*b  (the index)  +  4*chunk*D  (one chunk as float32)  +  32*Q*(chunk + k)  (merge)

the last term an upper bound (similarities, int64 keys and the running top-k are about 20
bytes per entry). Ties in similarity go to the lower pool index, so chunk size never changes
an answer. Time: each pass reads the whole index; `ahm_batches` serves `anchors_per_pass`
batches per pass (measured on one CPU thread: 256 batches over 200k x 128 float16 in 0.6 s,
and linear in N).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pul.crops import to_tensor

Strategy = Literal["ahm", "rss"]


@dataclass
class EmbeddingIndex:
    """The embeddings of a patch pool, row i for patch i: N x D, unit norm."""

    embeddings: torch.Tensor

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or not self.embeddings.is_floating_point():
            raise ValueError(f"embeddings must be N x D floats, got {self.embeddings.shape}")

    def __len__(self) -> int:
        return self.embeddings.shape[0]


@torch.no_grad()
def build_index(
    embed: Callable[[torch.Tensor], torch.Tensor],
    patches: np.ndarray | torch.Tensor,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float16,
) -> EmbeddingIndex:
    """Index of patches embedded by `embed` (e.g. `SiamNet.embed`): N x S x S x 3 uint8
    (numpy), or N x 3 x S x S (torch, uint8 or float 0..255, already on the device).

    Put the model in eval mode first: batch norm in training mode would make each embedding
    depend on the rest of its batch. The index is filled in place, so peak memory is the
    index plus one batch, not a float32 copy of it.
    """
    index = None
    for start in range(0, len(patches), batch_size):
        part = patches[start : start + batch_size]
        images = part.to(device).float() if torch.is_tensor(part) else to_tensor(part, device)
        emb = embed(images)  # B x D
        if index is None:
            index = torch.empty(len(patches), emb.shape[1], dtype=dtype, device=device)
        index[start : start + len(emb)] = emb.to(device, dtype)
    if index is None:
        raise ValueError("no patches to index")
    return EmbeddingIndex(index)


@torch.no_grad()
def nearest(
    index: EmbeddingIndex,
    queries: torch.Tensor,
    k: int,
    chunk: int = 4096,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most similar pool entries to each query: (indices Q x k int64, cosines Q x k).

    queries: Q x D unit norm. exclude: Q pool indices, one per query, never returned (the
    query's own row when it is a pool member). Sorted by similarity, ties by lower index.
    """
    pool = index.embeddings  # N x D
    limit = len(pool) - (exclude is not None)
    if not 1 <= k <= limit:
        raise ValueError(f"k must be in [1, {limit}] for a pool of {len(pool)}, got {k}")
    if len(pool) >= 2**32 or chunk < 1:
        raise ValueError(f"need a pool under 2**32 and chunk >= 1, got {len(pool)}, {chunk}")
    q = queries.to(pool.device, torch.float32)  # Q x D
    rows = torch.arange(len(q), device=pool.device)
    best = rows.new_empty(len(q), 0)  # Q x k keys after the first chunk
    for start in range(0, len(pool), chunk):
        sim = q @ pool[start : start + chunk].float().T  # sim: Q x c
        if exclude is not None:
            local = exclude.to(pool.device) - start  # Q
            inside = (local >= 0) & (local < sim.shape[1])
            sim[rows[inside], local[inside]] = float("-inf")
        keys = torch.cat([best, _keys(sim, start)], dim=1)  # Q x (k + c)
        best = keys.topk(min(k, keys.shape[1]), dim=1).values  # topk, not sort: 7x faster
    return _decode(best)


# A similarity and a pool index packed into one int64, larger for a higher similarity and,
# at equal similarity, a lower index: top-k of the keys is exact and deterministic, with no
# ties for topk to break arbitrarily (so chunk size cannot change an answer).
_LOW = 0xFFFFFFFF


def _keys(sim: torch.Tensor, start: int) -> torch.Tensor:
    # sim: Q x c float32, columns are pool rows start.. -> Q x c int64
    bits = sim.add_(0.0).view(torch.int32)  # + 0.0 turns -0.0 into 0.0: they must tie
    bits ^= (bits < 0).to(torch.int32) * 0x7FFFFFFF  # negative floats: reverse their order
    idx = torch.arange(start, start + sim.shape[1], device=sim.device)
    return (bits.to(torch.int64) << 32) | (_LOW - idx)


def _decode(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # keys: Q x k int64 -> (pool indices Q x k int64, similarities Q x k float32)
    bits = (keys >> 32).to(torch.int32)
    bits ^= (bits < 0).to(torch.int32) * 0x7FFFFFFF
    return _LOW - (keys & _LOW), bits.view(torch.float32)


def ahm_batches(
    index: EmbeddingIndex,
    batch_size: int,
    rng: np.random.Generator,
    strategy: Strategy = "ahm",
    num_batches: int | None = None,
    anchors_per_pass: int = 256,
    chunk: int = 4096,
) -> Iterator[np.ndarray]:
    """Mini-batches of pool indices (batch_size int64 arrays, distinct within a batch).

    ahm: a random anchor first, then its batch_size - 1 nearest neighbours, most similar
    first. rss: batch_size random patches. Anchors (ahm) and patches (rss) are drawn without
    replacement until the pool is used up, then from a fresh permutation. num_batches
    defaults to N // batch_size (one epoch). For ahm, one pass over the pool serves
    `anchors_per_pass` batches at once. Arguments are checked at the call, not at the first
    `next` (a function returning a generator, not a generator).
    """
    n = len(index)
    if not 2 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [2, {n}] for a pool of {n}, got {batch_size}")
    if strategy not in ("ahm", "rss"):
        raise ValueError(f"strategy must be 'ahm' or 'rss', got {strategy!r}")
    if (num_batches is not None and num_batches < 0) or anchors_per_pass < 1 or chunk < 1:
        raise ValueError("num_batches must be >= 0, anchors_per_pass and chunk >= 1")
    num_batches = n // batch_size if num_batches is None else num_batches
    if strategy == "rss":
        return _rss(n, batch_size, num_batches, rng)
    return _ahm(index, batch_size, num_batches, rng, anchors_per_pass, chunk)


def index_bytes(n: int, dim: int, dtype_bytes: int, queries: int, chunk: int, k: int) -> int:
    """Peak memory of an index of n embeddings and one `nearest` call (see module doc)."""
    return n * dim * dtype_bytes + 4 * chunk * dim + 32 * queries * (chunk + k)


def max_patches(
    memory_bytes: int,
    dim: int = 128,
    dtype_bytes: int = 2,
    queries: int = 256,
    chunk: int = 4096,
    k: int = 64,
) -> int:
    """How many patches' embeddings fit in `memory_bytes` with room for a search."""
    free = memory_bytes - index_bytes(0, dim, dtype_bytes, queries, chunk, k)
    return max(0, free // (dim * dtype_bytes))


def _ahm(
    index: EmbeddingIndex,
    batch_size: int,
    count: int,
    rng: np.random.Generator,
    anchors_per_pass: int,
    chunk: int,
) -> Iterator[np.ndarray]:
    anchors = _permutations(len(index), count, rng)
    for start in range(0, count, anchors_per_pass):
        group = torch.from_numpy(anchors[start : start + anchors_per_pass])
        queries = index.embeddings[group.to(index.embeddings.device)]  # A x D
        neighbours, _ = nearest(index, queries, batch_size - 1, chunk, exclude=group)
        for anchor, row in zip(group.numpy(), neighbours.cpu().numpy(), strict=True):
            yield np.concatenate([[anchor], row])


def _permutations(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    # count indices: a permutation of the pool, then another, ... (no repeat within one).
    reps = max(1, -(-count // n))
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:count].astype(np.int64)


def _rss(n: int, batch_size: int, count: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    # Consecutive slices of permutations; a permutation's leftover tail is dropped, so a
    # batch never mixes two permutations and never holds one patch twice.
    per_perm = n // batch_size
    for b in range(count):
        if b % per_perm == 0:
            perm = rng.permutation(n).astype(np.int64)
        s = (b % per_perm) * batch_size
        yield perm[s : s + batch_size]
