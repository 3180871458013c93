"""InfoNCE / NT-Xent: a hand computation, its bounds, and DDP gathering on two gloo ranks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from pul.contrastive import gather_with_grad, info_nce

WORLD, N, D_IN, D, TAU = 2, 3, 5, 4, 0.2


def hand_nt_xent(a: list[list[float]], b: list[list[float]], tau: float) -> float:
    """NT-Xent written out with loops: anchors a then b, positive the other view."""
    z = a + b
    n = len(a)
    total = 0.0
    for i, zi in enumerate(z):
        pos = (i + n) % (2 * n)
        sims = {j: sum(x * y for x, y in zip(zi, zj, strict=True)) / tau for j, zj in enumerate(z)}
        denom = sum(math.exp(s) for j, s in sims.items() if j != i)
        total += -math.log(math.exp(sims[pos]) / denom)
    return total / (2 * n)


def test_info_nce_equals_a_hand_computation():
    a = [[1.0, 0.0], [0.0, 1.0]]
    b = [[0.6, 0.8], [0.8, -0.6]]
    loss = info_nce(torch.tensor(a), torch.tensor(b), tau=0.5)
    assert loss.item() == pytest.approx(hand_nt_xent(a, b, 0.5), rel=1e-6)
    # Spelled out for anchor a_0: positive b_0 (0.6), negatives a_1 (0) and b_1 (0.8).
    a0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(1.6)))
    assert a0 == pytest.approx(1.0271, abs=1e-4)


def test_random_embeddings_match_the_hand_computation_and_are_symmetric():
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(5, 3, generator=g), dim=1)
    b = F.normalize(torch.randn(5, 3, generator=g), dim=1)
    loss = info_nce(a, b, tau=0.1)
    assert loss.item() == pytest.approx(hand_nt_xent(a.tolist(), b.tolist(), 0.1), rel=1e-5)
    assert info_nce(b, a, tau=0.1).item() == pytest.approx(loss.item(), rel=1e-6)


def test_aligned_views_near_the_lower_bound_swapped_views_near_the_upper():
    n, tau = 4, 0.1
    # float64: in float32 log(1 + 6e-5) next to logits of 10 keeps only 3 digits.
    a = torch.eye(n, dtype=torch.float64)  # orthonormal: every negative has similarity 0
    aligned = info_nce(a, a.clone(), tau).item()
    # Positive 1, 2n - 2 negatives at 0: log(1 + (2n - 2) e^(-1/tau)), about 2.7e-4.
    assert aligned == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-1 / tau)), rel=1e-9)
    assert aligned < 1e-3
    # b_i = a_{i-1}: the positive at 0 and one negative at 1, so about 1 / tau.
    swapped = info_nce(a, a.roll(1, dims=0), tau).item()
    assert swapped == pytest.approx(math.log(math.exp(1 / tau) + 2 * n - 2), rel=1e-9)
    assert swapped > 10.0


def test_info_nce_rejects_bad_input_and_passes_gradients():
    with pytest.raises(ValueError, match="tau must be positive"):
        info_nce(torch.eye(2), torch.eye(2), 0.0)
    with pytest.raises(ValueError, match="N x D"):
        info_nce(torch.eye(2), torch.eye(3), 0.1)
    a = F.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    info_nce(a, F.normalize(torch.randn(4, 3), dim=1), 0.1).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert gather_with_grad(a) is a  # no process group: nothing to gather


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of both views for the whole batch, WORLD*N x D_IN, identical in every process."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(WORLD * N, D_IN, generator=g), torch.randn(WORLD * N, D_IN, generator=g)


def model() -> torch.nn.Linear:
    torch.manual_seed(2)
    return torch.nn.Linear(D_IN, D)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        xa, xb = inputs()
        net = DistributedDataParallel(model())
        mine = slice(rank * N, (rank + 1) * N)
        loss = info_nce(F.normalize(net(xa[mine]), dim=1), F.normalize(net(xb[mine]), dim=1), TAU)
        loss.backward()  # DDP averages the parameter gradients over the ranks

        # The helper alone: ranks weigh the gathered tensor differently; the local gradient
        # must be the sum of what every rank's weights send to this rank's rows.
        x = torch.arange(N * D, dtype=torch.float32).reshape(N, D).add(10 * rank).requires_grad_()
        y = gather_with_grad(x)
        weights = torch.arange(WORLD * N * D, dtype=torch.float32).reshape(WORLD * N, D)
        (y * weights * (rank + 1)).sum().backward()
        result = {
            "loss": loss.detach(),
            "grads": [p.grad.clone() for p in net.parameters()],
            "gathered": y.detach(),
            "x_grad": x.grad,
        }
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_gathering_equals_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    xa, xb = inputs()
    net = model()
    loss = info_nce(F.normalize(net(xa), dim=1), F.normalize(net(xb), dim=1), TAU)
    loss.backward()

    # The mean of the ranks' losses is the loss of the concatenated batch (2*N anchors each).
    mean_loss = sum(r["loss"] for r in ranks) / WORLD
    torch.testing.assert_close(mean_loss, loss.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ranks[0]["loss"], ranks[1]["loss"])
    # Gradients too: without the cross-rank sum in backward they would miss the terms
    # each rank's embeddings get as the other rank's negatives.
    for r in ranks:
        for got, want in zip(r["grads"], [p.grad for p in net.parameters()], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)

    weights = torch.arange(WORLD * N * D, dtype=torch.float32).reshape(WORLD * N, D)
    parts = [torch.arange(N * D, dtype=torch.float32).reshape(N, D) + 10 * r for r in range(2)]
    for rank, r in enumerate(ranks):
        torch.testing.assert_close(r["gathered"], torch.cat(parts))
        mine = weights[rank * N : (rank + 1) * N]
        torch.testing.assert_close(r["x_grad"], mine * sum(k + 1 for k in range(WORLD)))
