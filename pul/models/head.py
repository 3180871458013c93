"""SiamFC's head: cross-correlate exemplar features with search features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class XCorr(nn.Module):
    """Response map = (exemplar features (*) search features) * out_scale, no learned part.

    The whole batch goes through ONE grouped convolution: the search features are folded into
    the channel axis (1 x B*C x H x W) and each exemplar is the kernel of its own group.
    x may hold k*Bz samples (e.g. one exemplar against a scale pyramid): x sample i is then
    correlated with z sample i mod Bz, as in siamfc-pytorch.
    """

    def __init__(self, out_scale: float = 0.001) -> None:
        super().__init__()
        # raw correlations of unnormalised features are large; the scale keeps the logits
        # in the sigmoid's useful range at initialisation (SiamDW used 0.1)
        self.out_scale = out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # z: Bz x C x hz x wz, x: Bx x C x H x W (Bx = k*Bz) -> Bx x 1 x (H-hz+1) x (W-wz+1)
        bz, c = z.shape[:2]
        bx, cx, h, w = x.shape
        if cx != c or bx % bz:
            raise ValueError(f"cannot correlate z {tuple(z.shape)} with x {tuple(x.shape)}")
        out = F.conv2d(x.reshape(bx // bz, bz * c, h, w), z, groups=bz)  # k x Bz x H' x W'
        return out.reshape(bx, 1, out.shape[-2], out.shape[-1]) * self.out_scale

    def extra_repr(self) -> str:
        return f"out_scale={self.out_scale}"
