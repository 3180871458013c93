"""The SiamFC loss: class-balanced binary cross-entropy against hard labels at the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pul.labels import balanced_weights, label_maps


def balanced_bce(
    logits: torch.Tensor, targets_xy: torch.Tensor, stride: int = 8, radius: float = 16.0
) -> torch.Tensor:
    """Mean over the batch of each pair's weighted BCE.

    logits: B x 1 x S x S response scores; targets_xy: B x 2 target centres in search-crop
    pixels from the crop centre.
    """
    labels = label_maps(targets_xy, logits.shape[-1], stride, radius)
    weights = balanced_weights(labels)
    per_cell = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (weights * per_cell).sum(dim=(1, 2, 3)).mean()
