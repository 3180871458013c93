"""The response-map loss family of TC learning: bce, soft_bce, nr (default), nr_exact.

METHOD.md, Stage 3. For a pair with mined centre c and the K offsets eps_k of the noise
prior (weights p_k), the label map m_k is the SiamFC disc at c + eps_k, w_k its balanced
weights (summing to 1), and

    g_k = sum_x sum_b w_k(x) m_kb(x) h_b(x),   h_1 = log f, h_0 = log(1 - f), f = sigmoid(s)

a weighted mean log-likelihood: g_k <= 0, and g_k = -log 2 at f = 0.5. Per pair:

    bce       -g(0)                              hard labels at c (= balanced_bce)
    soft_bce  -sum_k p_k g_k                     -E[g]: labels blurred by the noise
    nr        -log(1 + E[gc] + E[gc^2] / 2)      gc = max(g_k, -1)
    nr_exact  -log sum_k p_k exp(g_k)            what the Taylor form approximates

Why the clamp: q(g) = 1 + g + g^2 / 2 falls until g = -1 and rises after, so unclamped a
worse fit (g below -1) would lower the loss. With gc in [-1, 0], q(gc) is in [1/2, 1], so
the nr loss of a pair lies in [0, log 2]: 0 only when every offset with p_k > 0 is fitted
perfectly (g_k = 0), log 2 exactly when every such g_k <= -1 (weighted geometric-mean
likelihood at most 1/e, worse than chance). Such pairs get zero gradient, and since
q'(-1) = 0 the clamp adds no kink. Also q(g) >= exp(g) for g <= 0, so nr <= nr_exact.

E[g] and E[g^2] over the K offsets equal the supplement's mbar / V forms (Eq. 3-5) with the
weighted labels w * m_b in place of m_b, without the N x N matrix V.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from pul.labels import balanced_weights, cell_offsets
from pul.losses.noise import MAX_SIDE, noise_grid

LossKind = Literal["bce", "soft_bce", "nr", "nr_exact"]


def offset_label_maps(
    centres_xy: torch.Tensor, size: int, stride: int, radius: float
) -> torch.Tensor:
    """`pul.labels.label_maps` for centres B x K x 2, as B x K x S x S, bit for bit.

    The grid is separable, so the squared distance is a broadcast sum of a row and a column
    term; the norm over B x K x S x S x 2 points was the slowest step of the loss on a CPU.
    """
    grid = cell_offsets(size, stride, centres_xy.device)  # S x S x 2
    dx = grid[0, :, 0] - centres_xy[..., 0:1]  # B x K x S (columns)
    dy = grid[:, 0, 1] - centres_xy[..., 1:2]  # B x K x S (rows)
    distance = (dy[..., :, None] ** 2 + dx[..., None, :] ** 2).sqrt()  # B x K x S x S
    return (distance <= radius).to(torch.float32)


def pair_loglik(
    logits: torch.Tensor,
    targets_xy: torch.Tensor,
    sigma_px: float | torch.Tensor,
    stride: int = 8,
    radius: float = 16.0,
    max_side: int = MAX_SIDE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g B x K, prior weights p B x K) for logits B x 1 x S x S and centres B x 2 (pixels).

    sigma_px: one std for the batch, or one per pair (B); all pairs share the grid shape.
    """
    if logits.dim() != 4 or logits.shape[1] != 1 or logits.shape[2] != logits.shape[3]:
        raise ValueError(f"logits must be B x 1 x S x S, got {tuple(logits.shape)}")
    batch, size = logits.shape[0], logits.shape[-1]
    sigma = torch.as_tensor(sigma_px, dtype=torch.float32, device=logits.device)
    sigma = sigma.expand(batch) if sigma.dim() == 0 else sigma
    if sigma.shape != (batch,):
        raise ValueError(f"sigma_px must be one value or B = {batch}, got {tuple(sigma.shape)}")
    offsets, prior = noise_grid(sigma, stride, max_side)  # B x K x 2, B x K
    k = offsets.shape[1]
    centres = targets_xy.to(torch.float32)[:, None, :] + offsets  # B x K x 2
    labels = offset_label_maps(centres, size, stride, radius).to(logits.dtype)  # B x K x S x S
    # balanced_weights treats each (pair, offset) as its own map: B*K x 1 x S x S
    weights = balanced_weights(labels.view(-1, 1, size, size)).view(batch, k, size, size)
    log_f = F.logsigmoid(logits)  # B x 1 x S x S, h_1
    log_not_f = F.logsigmoid(-logits)  # log(1 - f) without cancellation, h_0
    per_cell = labels * log_f + (1 - labels) * log_not_f  # B x K x S x S
    return (weights * per_cell).sum(dim=(-2, -1)), prior.to(logits.dtype)


def _expected_nll(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -(p * g).sum(-1)


def _nr(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    gc = g.clamp(min=-1.0)
    return -torch.log((p * (1 + gc + 0.5 * gc**2)).sum(-1))


def _nr_exact(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -torch.logsumexp(g + p.log(), dim=-1)  # p_k = 0 gives -inf: a zero term


PAIR_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "bce": _expected_nll,  # called with sigma = 0: K = 1, p = 1
    "soft_bce": _expected_nll,
    "nr": _nr,
    "nr_exact": _nr_exact,
}
"""Per-pair loss (B) from g and p (B x K each), by kind."""


def response_loss(
    kind: LossKind,
    logits: torch.Tensor,
    targets_xy: torch.Tensor,
    sigma_px: float | torch.Tensor = 0.0,
    stride: int = 8,
    radius: float = 16.0,
    max_side: int = MAX_SIDE,
) -> torch.Tensor:
    """Mean over the batch of the per-pair loss `kind`; `bce` ignores sigma_px.

    logits: B x 1 x S x S response scores; targets_xy: B x 2 mined centres, pixels from the
    search-crop centre; sigma_px: label-noise std in search-crop pixels, one or one per pair.
    """
    if kind not in get_args(LossKind):
        raise ValueError(f"kind must be one of {list(get_args(LossKind))}, got {kind!r}")
    if isinstance(sigma_px, float | int) and not (math.isfinite(sigma_px) and sigma_px >= 0):
        raise ValueError(f"sigma_px must be finite and >= 0, got {sigma_px}")
    sigma = 0.0 if kind == "bce" else sigma_px
    g, p = pair_loglik(logits, targets_xy, sigma, stride, radius, max_side)
    return PAIR_LOSSES[kind](g, p).mean()
