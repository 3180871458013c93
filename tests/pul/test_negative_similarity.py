"""How hard a batch's negatives are (the mean cosine of its pairs (a_i, b_j), i != j):
exact values on hand-made batches, and AHM's batches harder than random ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pul.ahm import EmbeddingIndex, ahm_batches
from pul.contrastive import negative_similarity

pytestmark = pytest.mark.usefixtures("one_thread")


def test_identical_rows_are_negatives_of_similarity_one():
    row = F.normalize(torch.tensor([[1.0, 2.0, 3.0]]), dim=1)
    a = row.repeat(5, 1)
    assert negative_similarity(a, a).item() == pytest.approx(1.0, abs=1e-6)


def test_orthonormal_rows_are_negatives_of_similarity_zero():
    eye = torch.eye(4)
    assert negative_similarity(eye, eye).item() == 0.0
    # the positives (the diagonal) do not count: b_i = a_i for every i changes nothing
    assert negative_similarity(eye, eye.clone()).item() == 0.0


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_a_regular_simplex_gives_minus_one_over_n_minus_one(n):
    # n unit vectors summing to zero: every pair at cosine -1 / (n - 1), the lowest mean
    a = F.normalize(torch.eye(n) - 1.0 / n, dim=1)
    assert negative_similarity(a, a).item() == pytest.approx(-1.0 / (n - 1), abs=1e-6)


def test_negative_similarity_equals_a_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    b = torch.tensor([[0.6, 0.8], [1.0, 0.0], [-0.8, 0.6]])
    # a_i . b_j for i != j: (0,1) 1, (0,2) -0.8, (1,0) 0.8, (1,2) 0.6, (2,0) 1, (2,1) 0.6;
    # the positives (0,0) 0.6, (1,1) 0, (2,2) 0 are left out
    expected = (1.0 - 0.8 + 0.8 + 0.6 + 1.0 + 0.6) / 6
    assert negative_similarity(a, b).item() == pytest.approx(expected, abs=1e-6)
    assert negative_similarity(b, a).item() == pytest.approx(expected, abs=1e-6)


def clustered(clusters: int = 8, per_cluster: int = 16, dim: int = 16, seed: int = 0):
    """Unit embeddings in `clusters` tight groups around orthogonal directions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:clusters]
    emb = np.repeat(centres, per_cluster, axis=0) + 0.05 * rng.standard_normal(
        (clusters * per_cluster, dim)
    )
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return torch.tensor(emb, dtype=torch.float32)


def mean_negative_similarity(emb: torch.Tensor, strategy: str, batch_size: int = 8) -> float:
    rng = np.random.default_rng(1)
    batches = list(ahm_batches(EmbeddingIndex(emb), batch_size, rng, strategy))
    assert len(batches) == len(emb) // batch_size
    values = [negative_similarity(emb[idx], emb[idx]).item() for idx in batches]
    return float(np.mean(values))


def test_ahm_batches_hold_harder_negatives_than_random_batches():
    emb = clustered()
    ahm = mean_negative_similarity(emb, "ahm")
    rss = mean_negative_similarity(emb, "rss")
    # AHM: an anchor and its 7 nearest, all from its own cluster of 16 (cosine ~0.98);
    # RSS: a pair from one cluster with chance 15/127, else orthogonal (cosine ~0)
    assert ahm > 0.95
    assert rss < 0.3
    assert ahm - rss > 0.6
