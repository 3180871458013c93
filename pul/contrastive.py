"""InfoNCE / NT-Xent (SimCLR) on two views, with negatives gathered from every DDP rank.

Each of the 2N local embeddings is an anchor; its positive is the other view of the same
patch, its negatives are every other embedding of both views, on all ranks under DDP. The
loss is the mean over anchors of -log softmax(positive), with cosine similarities / tau.

Gathering and gradients **[ours]**: moco's `concat_all_gather` returns a tensor without
gradient, which is right for moco's momentum keys and wrong here, where the negatives come
from the encoder being trained. `gather_with_grad` puts this rank's own tensor in its slice
(so the local part keeps its graph) and, in the backward pass, sums the gradient of the
gathered tensor over ranks before taking this rank's slice: each rank then receives the
gradient that the other ranks' losses send to its embeddings as negatives. With DDP's
averaging of parameter gradients, W ranks of batch N train exactly like one process with the
concatenated batch of W*N (tested). Every rank must have the same N (use drop_last).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        # x: N x ... -> W*N x ..., rows rank*N:(rank+1)*N being x itself
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        parts[rank] = x
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # grad: W*N x ... on every rank -> their sum, this rank's N rows
        grad = grad.contiguous().clone()  # all_reduce works in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenation of `x` (N x ...) over all ranks, W*N x ..., differentiable; x if alone."""
    return _GatherWithGrad.apply(x) if distributed() else x


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float, gather: bool = True) -> torch.Tensor:
    """NT-Xent loss of unit-norm embeddings a, b (N x D) of two views; (a_i, b_i) positive.

    gather: under DDP, take the negatives from all ranks (one all_gather per call).
    Returns the mean over this rank's 2N anchors; the mean over ranks equals the loss of one
    process on the whole batch.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must both be N x D, got {tuple(a.shape)}, {tuple(b.shape)}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    n = a.shape[0]
    anchors = torch.cat([a, b])  # 2N x D: views a then b
    rank = 0
    if gather and distributed():
        rank = dist.get_rank()
        candidates = gather_with_grad(anchors)  # 2WN x D: [a_0; b_0; a_1; b_1; ...]
    else:
        candidates = anchors  # 2N x D
    logits = anchors @ candidates.T / tau  # logits: 2N x 2WN
    local = torch.arange(2 * n, device=a.device)
    own = rank * 2 * n + local  # 2N: each anchor's own column, not a negative
    positive = rank * 2 * n + (local + n) % (2 * n)  # 2N: the other view of the same patch
    logits = logits.masked_fill(F.one_hot(own, logits.shape[1]).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


def negative_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of the negatives (a_i, b_j), i != j, of this rank's batch of
    unit-norm embeddings a, b (N x D): how hard the batch's negatives are (AHM raises it,
    supplement Sec. C). Needs N >= 2."""
    sim = a @ b.t()
    n = sim.shape[0]
    return (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
