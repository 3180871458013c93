"""The response-map loss family of TC learning: bce, soft_bce, nr (default), nr_exact.

METHOD.md, Stage 3. For a pair with mined centre c and the K label states k of the noise
prior (weights p_k: the Gaussian mass of the true centres c + eps that give state k, see
pul.losses.noise), the label map m_k is the SiamFC disc of that state, w_k its balanced
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

E[g] and E[g^2] over the K states equal the supplement's mbar / V forms (Eq. 3-5) with the
weighted labels w * m_b in place of m_b, without the N x N matrix V.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple, get_args

import torch
import torch.nn.functional as F

from pul.labels import balanced_weights, label_maps
from pul.losses.noise import ROWS, normal_mass, row_prior

LossKind = Literal["bce", "soft_bce", "nr", "nr_exact"]


class LabelStates(NamedTuple):
    """The noise prior as label states (pul.losses.noise): for each of R row positions t_y,
    the 2N + 1 intervals of t_x between consecutive disc-edge crossings (N = S^2 cells), each
    with constant labels, then the empty map. K = R (2N + 1) + 1."""

    g: torch.Tensor
    """B x K: the weighted log-likelihood of each state's label map."""
    p: torch.Tensor
    """B x K: each state's Gaussian mass; sums to 1 per pair, many entries are 0."""
    rows_y: torch.Tensor
    """B x R: the row positions t_y (pixels from the search-crop centre)."""
    bounds: torch.Tensor
    """B x R x 2N+2: the interval bounds along x, sorted, from -inf to +inf."""


def pair_loglik(
    logits: torch.Tensor,
    targets_xy: torch.Tensor,
    sigma_px: float | torch.Tensor,
    stride: int = 8,
    radius: float = 16.0,
    rows: int = ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g B x K, prior weights p B x K) for logits B x 1 x S x S and centres B x 2 (pixels).

    sigma_px: one std for the batch, or one per pair (B). A scalar 0 gives the exact labels
    at the centres (K = 1); otherwise the K entries are the label states of `label_states`.
    Values are checked (finite, >= 0) unless they are a tensor on a GPU, where checking
    would cost a host sync per step.
    """
    if isinstance(sigma_px, float | int):
        if not (math.isfinite(sigma_px) and sigma_px >= 0):
            raise ValueError(f"sigma_px must be finite and >= 0, got {sigma_px}")
        if sigma_px == 0:
            return exact_loglik(logits, targets_xy, stride, radius)
    states = label_states(logits, targets_xy, sigma_px, stride, radius, rows)
    return states.g, states.p


def label_states(
    logits: torch.Tensor,
    targets_xy: torch.Tensor,
    sigma_px: float | torch.Tensor,
    stride: int = 8,
    radius: float = 16.0,
    rows: int = ROWS,
) -> LabelStates:
    """The label states of the noise prior around each centre, and g of each.

    For a row position t_y only the cell rows within `radius` of it can be inside the disc:
    D = 2 floor(radius / stride) + 1 of them, so each row has 2 D S crossings.
    """
    _check_logits(logits)
    batch, size = logits.shape[0], logits.shape[-1]
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    sigma = torch.as_tensor(sigma_px, dtype=dtype, device=logits.device)
    sigma = sigma.expand(batch) if sigma.dim() == 0 else sigma
    if sigma.shape != (batch,):
        raise ValueError(f"sigma_px must be one value or B = {batch}, got {tuple(sigma.shape)}")
    if sigma.device.type == "cpu" and not bool(torch.isfinite(sigma).all() & (sigma >= 0).all()):
        raise ValueError(f"sigma_px must be finite and >= 0, got {sigma.tolist()}")
    centres = targets_xy.to(dtype)
    centre_cell = (size - 1) / 2
    band = centre_cell * stride + radius  # beyond it no disc touches the map
    rows_y, row_mass = row_prior(centres[:, 1], sigma, band, rows)  # B x R
    near, positions, order = _crossings(rows_y, size, stride, radius, dtype)

    n = size * size
    h = torch.stack([F.logsigmoid(logits), F.logsigmoid(-logits)], dim=-1).reshape(batch, n, 2)
    ones = torch.ones_like(h[..., :1])
    values = torch.cat([h, ones], dim=-1).to(dtype)  # B x N x 3: h_1, h_0, 1 (the count)
    values = torch.cat([values, torch.zeros_like(values[:, :1])], dim=1)  # + cell N: off map
    # the cells of each row's crossings (index n: a cell off the map, all zeros)
    picked = values.gather(1, near.reshape(batch, -1, 1).expand(-1, -1, 3))
    picked = picked.reshape(*near.shape, 3)  # B x R x C x 3 (C = D S crossing cells)
    events = torch.cat([picked, -picked], dim=2)  # enter +, leave -
    events = events.gather(2, order[..., None].expand(-1, -1, -1, 3))
    states = torch.cat([torch.zeros_like(events[:, :, :1]), events.cumsum(2)], dim=2)
    count = states[..., 2].round()  # positives in the disc, per interval: B x R x 2C+1
    all_neg = values[:, :n, 1].sum(-1)[:, None, None]  # B x 1 x 1
    g = _balanced_loglik(count, states[..., 0], states[..., 1], all_neg, n)

    inf = positions.new_full(positions.shape[:-1] + (1,), math.inf)
    bounds = torch.cat([-inf, positions, inf], dim=-1)  # B x R x 2C+2
    z = (bounds - centres[:, None, None, 0]) / sigma.clamp(min=1e-6)[:, None, None]
    mass = normal_mass(z[..., :-1], z[..., 1:]) * row_mass[..., None]  # B x R x 2C+1
    empty_mass = (1 - mass.sum(dim=(1, 2))).clamp(min=0)  # what lies beyond the row window
    g = torch.cat([g.flatten(1), all_neg[:, 0] / n], dim=1)  # + the empty map
    p = torch.cat([mass.flatten(1), empty_mass[:, None]], dim=1)
    p = p / p.sum(-1, keepdim=True)
    return LabelStates(g.to(logits.dtype), p.to(logits.dtype), rows_y, bounds)


def _crossings(
    rows_y: torch.Tensor, size: int, stride: int, radius: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each row position t_y (B x R): the cells near it (B x R x C flat indices; N for
    a cell row off the map), the sorted positions where they enter and leave the disc as
    t_x grows (B x R x 2C), and the sorting order over [enters, leaves].

    Cell (i, j) is inside the disc while |x_j - t_x| <= sqrt(r^2 - (y_i - t_y)^2). Cell rows
    out of reach get +inf crossings: zero-width intervals at the far end, entering before
    leaving (a stable sort of the enter-first list), so no impossible state comes between.
    """
    centre_cell = (size - 1) / 2
    reach = int(radius // stride)
    first = torch.ceil((rows_y - radius) / stride + centre_cell).long()  # B x R
    cell_rows = first[..., None] + torch.arange(2 * reach + 1, device=rows_y.device)  # B x R x D
    dy = (cell_rows - centre_cell) * stride - rows_y[..., None]
    on_map = (cell_rows >= 0) & (cell_rows < size)
    reached = on_map & (dy.abs() <= radius)
    half = (radius**2 - dy.to(dtype) ** 2).clamp(min=0).sqrt()
    half = torch.where(reached, half, torch.full_like(half, math.inf))  # B x R x D
    xs = (torch.arange(size, device=rows_y.device, dtype=dtype) - centre_cell) * stride
    enter = torch.where(torch.isinf(half)[..., None], math.inf, xs - half[..., None])
    leave = xs + half[..., None]  # B x R x D x S
    columns = torch.arange(size, device=rows_y.device)
    near = torch.where(on_map[..., None], cell_rows[..., None] * size + columns, size * size)
    positions = torch.cat([enter.flatten(2), leave.flatten(2)], dim=-1)  # B x R x 2C
    order = positions.argsort(dim=-1, stable=True)
    return near.flatten(2), positions.gather(-1, order), order


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() != 4 or logits.shape[1] != 1 or logits.shape[2] != logits.shape[3]:
        raise ValueError(f"logits must be B x 1 x S x S, got {tuple(logits.shape)}")


def exact_loglik(
    logits: torch.Tensor, targets_xy: torch.Tensor, stride: int = 8, radius: float = 16.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g B x 1, p = 1) for labels exactly at the mined centres: no noise, as `bce`."""
    _check_logits(logits)
    labels = label_maps(targets_xy.to(torch.float32), logits.shape[-1], stride, radius)
    weights = balanced_weights(labels).to(logits.dtype)
    labels = labels.to(logits.dtype)
    per_cell = labels * F.logsigmoid(logits) + (1 - labels) * F.logsigmoid(-logits)
    g = (weights * per_cell).sum(dim=(1, 2, 3))[:, None]
    return g, torch.ones_like(g)


def _balanced_loglik(count, pos_sum, neg_sum, all_neg, n: int) -> torch.Tensor:
    """g of a label state from its positives' count and sums of h_1 and h_0 over them.

    Balanced weights (pul.labels.balanced_weights): half the weight on the positives, half
    on the negatives; a state without positives weighs the negatives alone. The clamps keep
    transient states between tied crossings (zero mass) finite.
    """
    negatives = (n - count).clamp(min=1)
    with_pos = 0.5 * pos_sum / count.clamp(min=1) + 0.5 * (all_neg - neg_sum) / negatives
    return torch.where(count > 0, with_pos, all_neg / n)


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
    rows: int = ROWS,
) -> torch.Tensor:
    """Mean over the batch of the per-pair loss `kind`; `bce` ignores sigma_px.

    logits: B x 1 x S x S response scores; targets_xy: B x 2 mined centres, pixels from the
    search-crop centre; sigma_px: label-noise std in search-crop pixels, one or one per pair.
    """
    if kind not in get_args(LossKind):
        raise ValueError(f"kind must be one of {list(get_args(LossKind))}, got {kind!r}")
    sigma = 0.0 if kind == "bce" else sigma_px
    g, p = pair_loglik(logits, targets_xy, sigma, stride, radius, rows)
    return PAIR_LOSSES[kind](g, p).mean()
