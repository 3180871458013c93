"""Projection head of the contrastive losses: backbone features -> unit-norm embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Projection(nn.Module):
    """Global average pool + MLP (Linear-BN-ReLU-Linear) + L2 normalisation (SimCLR's head).

    The loss sees the projected embedding, the tracker the features before it: SimCLR found
    that the layer under the projection keeps more of the information a downstream task needs.
    BatchNorm1d needs more than one sample per batch in training mode.
    """

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        # feats: BxCxhxw -> pooled BxC -> embeddings BxD with ||e|| = 1
        pooled = feats.mean(dim=(2, 3))
        return F.normalize(self.mlp(pooled), dim=1)
