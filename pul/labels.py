"""SiamFC label maps: where on the response map the target is, and how much each cell counts.

Cell (i, j) of an S x S response map looks at the search-crop point
((j - c) * stride, (i - c) * stride) pixels from the crop centre, c = (S - 1) / 2. A cell is
positive when that point lies within `radius` pixels of the target centre.
"""

from __future__ import annotations

import torch


def cell_offsets(size: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """Pixel offset (x, y) of every response cell from the search-crop centre: S x S x 2."""
    centre = (size - 1) / 2
    steps = (torch.arange(size, device=device, dtype=torch.float32) - centre) * stride
    ys, xs = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([xs, ys], dim=-1)


def label_maps(targets_xy: torch.Tensor, size: int, stride: int, radius: float) -> torch.Tensor:
    """Binary labels B x 1 x S x S for targets at `targets_xy` (B x 2, pixels from the centre)."""
    grid = cell_offsets(size, stride, targets_xy.device)  # S x S x 2
    distance = (grid[None] - targets_xy[:, None, None, :]).norm(dim=-1)  # B x S x S
    return (distance <= radius).to(torch.float32).unsqueeze(1)


def balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    """SiamFC class balancing: positives and negatives each carry half the weight of a map.

    Normalised so each map's weights sum to 1 (METHOD.md): the loss of a pair is then a
    weighted mean, comparable across map sizes. A map without positives (target far outside
    the search region) gives all its weight to the negatives.
    """
    positives = labels.sum(dim=(1, 2, 3), keepdim=True)
    negatives = labels[0].numel() - positives
    pos_w = torch.where(positives > 0, 0.5 / positives.clamp(min=1), torch.zeros_like(positives))
    neg_w = torch.where(positives > 0, 0.5, 1.0) / negatives.clamp(min=1)
    return labels * pos_w + (1 - labels) * neg_w
