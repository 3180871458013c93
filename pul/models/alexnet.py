"""SiamFC's AlexNet backbone: the batch-norm variant `AlexNetV1` of siamfc-pytorch.

Five convolutions without padding (so every feature sees only image pixels, which keeps
the cross-correlation translation equivariant) and a total stride of 8:

    exemplar 3x127x127 -> Cx6x6,   instance 3x255x255 -> Cx22x22   (C = 256 at width 1)

conv2, conv4 and conv5 are split into two groups, as in the original two-GPU AlexNet; conv5
ends without batch norm and ReLU, so the correlation can use signed features.
"""

from __future__ import annotations

import torch
from torch import nn

GROUPS = 2
"""Groups of the split convolutions; every channel count is a multiple of it."""
CHANNELS = (96, 256, 384, 384, 256)
"""Output channels of conv1..conv5 at width 1 (siamfc-pytorch AlexNetV1)."""


def _bn(channels: int) -> nn.BatchNorm2d:
    # siamfc-pytorch's settings: slower running statistics than PyTorch's default 0.1
    return nn.BatchNorm2d(channels, eps=1e-6, momentum=0.05)


def scaled_channels(width: float) -> tuple[int, ...]:
    """CHANNELS times `width`, rounded to a multiple of GROUPS (width 1 gives CHANNELS)."""
    return tuple(max(GROUPS, round(c * width / GROUPS) * GROUPS) for c in CHANNELS)


class AlexNet(nn.Module):
    """SiamFC AlexNet (`AlexNetV1`); `width` scales every layer's channels."""

    total_stride = 8

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = scaled_channels(width)
        self.out_channels = c5
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, c1, 11, 2), _bn(c1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(c1, c2, 5, 1, groups=GROUPS),
            _bn(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.conv3 = nn.Sequential(nn.Conv2d(c2, c3, 3, 1), _bn(c3), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(
            nn.Conv2d(c3, c4, 3, 1, groups=GROUPS), _bn(c4), nn.ReLU(inplace=True)
        )
        # a one-layer Sequential, as in siamfc-pytorch, so that its checkpoints load by name
        self.conv5 = nn.Sequential(nn.Conv2d(c4, c5, 3, 1, groups=GROUPS))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """siamfc-pytorch's `init_weights`: Xavier-uniform convs, zero biases, BN = identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: Bx3xHxW -> BxCx((H-87)/8 + 1)x((W-87)/8 + 1)
        x = self.conv1(x)  # Bx96x((H-11)/2+1) then pooled: stride 4
        x = self.conv2(x)  # Bx256, stride 8
        x = self.conv3(x)
        x = self.conv4(x)
        return self.conv5(x)
