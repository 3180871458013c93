"""AHM: exact chunked nearest neighbours, anchor batches on a planted set, RSS, memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pul.ahm import (
    EmbeddingIndex,
    ahm_batches,
    build_index,
    index_bytes,
    max_patches,
    nearest,
)

REPO = Path(__file__).resolve().parents[2]
CLUSTER = 8  # an anchor plus 7 near-duplicates: one AHM batch of size 8

# Matrices of a few thousand entries: waking a second intra-op thread costs more than
# the product, and on a busy machine much more (milliseconds per call).
pytestmark = pytest.mark.usefixtures("one_thread")


def planted(n: int = 5000, dim: int = 32, clusters: int = 60, seed: int = 0):
    """Random unit vectors with `clusters` groups of CLUSTER near-duplicates planted in."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim))
    members = rng.permutation(n)[: clusters * CLUSTER].reshape(clusters, CLUSTER)
    for group in members:
        emb[group] = rng.standard_normal(dim) + 0.01 * rng.standard_normal((CLUSTER, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), members


def reference(pool: np.ndarray, queries: np.ndarray, k: int, exclude=None):
    """Dense k-NN with numpy: by similarity, ties by lower index."""
    sims = queries.astype(np.float64) @ pool.astype(np.float64).T  # Q x N
    if exclude is not None:
        sims[np.arange(len(queries)), exclude] = -np.inf
    idx = np.arange(pool.shape[0])
    order = np.stack([np.lexsort((idx, -row))[:k] for row in sims])
    return order, np.take_along_axis(sims, order, axis=1)


def test_ahm_batch_is_the_anchors_planted_cluster_or_its_true_neighbours():
    emb, members = planted()
    index = EmbeddingIndex(torch.from_numpy(emb))
    cluster_of = {int(i): set(group.tolist()) for group in members for i in group}
    batches = list(
        ahm_batches(index, 8, np.random.default_rng(1), "ahm", 300, anchors_per_pass=64, chunk=700)
    )
    assert len(batches) == 300
    anchors = np.array([b[0] for b in batches])
    assert len(set(anchors.tolist())) == 300  # anchors drawn without replacement
    expected, _ = reference(emb, emb[anchors], 7, exclude=anchors)
    hits = 0
    for batch, true_nn in zip(batches, expected, strict=True):
        assert batch.dtype == np.int64 and len(set(batch.tolist())) == 8
        # As sets: near-duplicates are ordered by float rounding, float32 here, float64 there.
        assert set(batch[1:].tolist()) == set(true_nn.tolist())
        if int(batch[0]) in cluster_of:
            hits += 1
            assert set(batch.tolist()) == cluster_of[int(batch[0])]
    assert hits >= 10  # 480 of 5000 planted: about 29 of 300 anchors expected


def test_ahm_finds_clusters_in_a_float16_index_too():
    emb, members = planted(seed=2)
    index = EmbeddingIndex(torch.from_numpy(emb).half())
    queries = index.embeddings[torch.from_numpy(members[:, 0])]
    found, sims = nearest(index, queries, 7, chunk=1000, exclude=torch.from_numpy(members[:, 0]))
    for group, row in zip(members, found.numpy(), strict=True):
        assert set(row.tolist()) == set(group[1:].tolist())
    assert sims.dtype == torch.float32 and sims.min() > 0.99


@pytest.mark.parametrize("chunk", [1, 7, 64, 299, 300, 1000])
def test_chunked_search_equals_dense_search_with_ties(chunk):
    # Entries in {-1, 0, 1}: dot products are exact small integers, so ties are everywhere
    # and exact whatever order BLAS sums in.
    rng = np.random.default_rng(3)
    pool = rng.integers(-1, 2, size=(300, 6)).astype(np.float32)
    queries = np.concatenate([pool[:20], rng.integers(-1, 2, size=(10, 6)).astype(np.float32)])
    exclude = np.concatenate([np.arange(20), rng.integers(0, 300, 10)])
    index = EmbeddingIndex(torch.from_numpy(pool))
    for k, excl in [(5, None), (40, exclude), (299, exclude)]:
        want_idx, want_sim = reference(pool, queries, k, excl)
        excl_t = None if excl is None else torch.from_numpy(excl)
        idx, sim = nearest(index, torch.from_numpy(queries), k, chunk=chunk, exclude=excl_t)
        np.testing.assert_array_equal(idx.numpy(), want_idx)
        np.testing.assert_array_equal(sim.numpy(), want_sim)
        if excl is not None:
            assert not (idx.numpy() == excl[:, None]).any()


def test_search_orders_signed_zeros_negatives_and_infinities():
    # The packed int64 keys must order floats as floats: -0.0 ties with 0.0, negatives
    # reverse, -inf (an excluded row) comes last.
    pool = torch.tensor([[0.5], [-0.0], [0.0], [-1.0], [1.0], [-0.5], [0.0], [-1e-30]])
    for chunk in (1, 3, 8):
        idx, sim = nearest(EmbeddingIndex(pool), torch.tensor([[1.0]]), 7, chunk, torch.tensor([2]))
        assert idx.tolist() == [[4, 0, 1, 6, 7, 5, 3]]
        assert sim.tolist() == [[1.0, 0.5, 0.0, 0.0, pytest.approx(-1e-30), -0.5, -1.0]]


def test_k_beyond_the_pool_is_a_clear_value_error():
    index = EmbeddingIndex(F.normalize(torch.randn(10, 4), dim=1))
    q = index.embeddings[:2]
    assert nearest(index, q, 10)[0].shape == (2, 10)  # queries outside the pool: k <= N
    with pytest.raises(ValueError, match=r"k must be in \[1, 10\]"):
        nearest(index, q, 11)
    with pytest.raises(ValueError, match=r"k must be in \[1, 9\] for a pool of 10, got 10"):
        nearest(index, q, 10, exclude=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="batch_size must be in"):
        ahm_batches(index, 11, np.random.default_rng(0))  # raised at the call, not at next()
    assert len(next(ahm_batches(index, 10, np.random.default_rng(0)))) == 10
    assert list(ahm_batches(index, 2, np.random.default_rng(0), num_batches=0)) == []


def test_rss_batches_are_distinct_random_and_cover_an_epoch():
    emb, _ = planted(n=1000, clusters=0)
    index = EmbeddingIndex(torch.from_numpy(emb))
    epoch = list(ahm_batches(index, 16, np.random.default_rng(4), "rss"))
    assert len(epoch) == 1000 // 16
    flat = np.concatenate(epoch)
    assert len(np.unique(flat)) == len(flat) == 62 * 16  # no patch twice within an epoch
    again = list(ahm_batches(index, 16, np.random.default_rng(4), "rss"))
    other = list(ahm_batches(index, 16, np.random.default_rng(5), "rss"))
    np.testing.assert_array_equal(np.concatenate(again), flat)
    assert (np.concatenate(other) != flat).mean() > 0.9
    # Beyond one epoch: batches stay distinct, every patch is drawn about equally often.
    many = np.stack(list(ahm_batches(index, 16, np.random.default_rng(6), "rss", 620)))
    assert all(len(set(b.tolist())) == 16 for b in many)
    counts = np.bincount(many.ravel(), minlength=1000)
    assert counts.min() >= 7 and counts.max() <= 10  # 10 permutations, tails dropped


def test_ahm_batches_are_harder_than_rss_batches():
    # Harder = the negatives are closer to the anchor, which is the point of AHM.
    emb, _ = planted(clusters=0, seed=7)
    index = EmbeddingIndex(torch.from_numpy(emb))

    def anchor_similarity(strategy: str) -> float:
        batches = ahm_batches(index, 8, np.random.default_rng(8), strategy, 100)
        return float(np.mean([emb[b[1:]] @ emb[b[0]] for b in batches]))

    ahm, rss = anchor_similarity("ahm"), anchor_similarity("rss")
    assert abs(rss) < 0.05  # random 32-d directions
    assert ahm > 0.4


def test_build_index_embeds_in_batches_in_order():
    patches = np.random.default_rng(9).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)

    def embed(img: torch.Tensor) -> torch.Tensor:  # Bx3xHxW -> unit-norm Bx3
        return F.normalize(img.mean(dim=(2, 3)), dim=1)

    index = build_index(embed, patches, batch_size=3, dtype=torch.float32)
    want = F.normalize(torch.from_numpy(patches).float().mean(dim=(1, 2)), dim=1)
    assert len(index) == 10 and index.embeddings.dtype == torch.float32
    torch.testing.assert_close(index.embeddings, want)
    assert build_index(embed, patches).embeddings.dtype == torch.float16


# Run in a fresh process, so that its resident memory is the search's alone. Linux resets a
# process's peak resident memory (VmHWM) when "5" is written to /proc/self/clear_refs. glibc
# serves allocations of 64 KiB and more with mmap and returns them on free (a fixed
# threshold, not its default sliding one), so the peak follows the bytes the search holds
# at once, not what the allocator keeps cached.
MEASURE = """
import json, sys
import torch
import torch.nn.functional as F
from pul.ahm import EmbeddingIndex, nearest

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status("VmRSS")

torch.set_num_threads(1)
n, dim, q, k = (int(v) for v in sys.argv[1:5])
dtype = getattr(torch, sys.argv[5])
chunks = [int(v) for v in sys.argv[6:]]
g = torch.Generator().manual_seed(0)
for chunk in chunks:  # load what a first call loads and touch BLAS's buffers at each size
    warm = F.normalize(torch.randn(min(n, 2 * chunk), dim, generator=g), dim=1)
    warm = EmbeddingIndex(warm.to(dtype))
    nearest(warm, warm.embeddings[:q], k, chunk=chunk, exclude=torch.arange(q))
del warm
index = EmbeddingIndex(F.normalize(torch.randn(n, dim, generator=g), dim=1).to(dtype))
queries = index.embeddings[:q].clone()
grown = []
for chunk in chunks:
    base = reset_peak()  # the index and the queries are in
    nearest(index, queries, k, chunk=chunk, exclude=torch.arange(q))
    grown.append(status("VmHWM") - base)
print(json.dumps(grown))
"""


def peak_bytes(n: int, dim: int, dtype: str, queries: int, k: int, chunks: list[int]) -> list[int]:
    """Peak memory of one search of an n x dim index (of torch dtype `dtype`) per chunk size,
    beyond the index itself."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    args = [str(v) for v in (n, dim, queries, k, dtype, *chunks)]
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_chunked_search_stays_within_its_memory_bound_and_a_dense_one_does_not():
    # the sizes max_patches assumes: D = 128, float16, 256 queries, chunk 4096, k 64
    n, dim, queries, k, chunk = 60_000, 128, 256, 64, 4096
    bound = index_bytes(0, dim, 2, queries, chunk, k)  # what a search adds to the index: 36 MB
    chunked, dense = peak_bytes(n, dim, "float16", queries, k, [chunk, n])
    # measured: 29 MB in chunks; 0.3 GB in one chunk of the whole pool (Q x N similarities,
    # their int64 keys, the merge), which the bound of that chunk size still covers
    assert chunked <= bound, (chunked, bound)
    assert dense > 4 * bound, (dense, bound)
    assert dense <= index_bytes(0, dim, 2, queries, n, k)


def test_patches_per_node_is_what_the_memory_bound_allows():
    gib = 2**30
    cpu = max_patches(24 * gib)  # D = 128, float16, 256 queries, chunk 4096, k 64
    gpu = max_patches(80 * 10**9)
    assert cpu == (24 * gib - index_bytes(0, 128, 2, 256, 4096, 64)) // 256 == 100_521_984
    assert gpu == 312_358_688
    for budget, n in [(24 * gib, cpu), (80 * 10**9, gpu)]:
        assert index_bytes(n, 128, 2, 256, 4096, 64) <= budget
        assert index_bytes(n + 1, 128, 2, 256, 4096, 64) > budget
