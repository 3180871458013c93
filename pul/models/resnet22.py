"""SiamDW's CIResNet-22 backbone (Zhang & Peng, "Deeper and Wider Siamese Networks", 2019).

Padding makes a deep network's features depend on where the target sits in the crop, which
teaches a Siamese tracker a position bias. SiamDW keeps padding but crops it away again:
every residual unit (CIR) removes the one-pixel border its padded 3x3 convolution touched,
after the residual addition; the downsampling unit (CIR-D) is a stride-1 CIR unit followed
by a 2x2 max pool instead of a strided convolution. Layout (SiamDW `ResNet22`, i.e.
`ResNet(Bottleneck_CI, [3, 4], [True, False], [False, True])`):

    stem     conv 7x7/2 64 + BN + ReLU, crop 2, max pool 2x2/2            stride 4
    layer1   3 CIR units, 64-64-256                                      stride 4
    layer2   CIR unit 128-128-512, max pool 2x2/2, 3 CIR units            stride 8
             (the last unit without its final ReLU)

    exemplar 3x127x127 -> 512x5x5,   instance 3x255x255 -> 512x21x21   (response 17x17)
"""

from __future__ import annotations

import torch
from torch import nn

STEM = 64
"""Stem channels at width 1."""
PLANES = (64, 128)
"""Bottleneck widths of layer1 and layer2 at width 1 (outputs are EXPANSION times wider)."""
UNITS = (3, 4)
"""Residual units in layer1 and layer2."""
EXPANSION = 4


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    # BxCxHxW -> BxCx(H-2b)x(W-2b): drop the features that saw the zero padding
    return x[:, :, border:-border, border:-border].contiguous()


class CIRUnit(nn.Module):
    """Bottleneck residual unit whose output loses the 1-pixel padding-affected border."""

    def __init__(self, in_ch: int, planes: int, last_relu: bool = True) -> None:
        super().__init__()
        out_ch = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.last_relu = last_relu
        self.downsample = None
        if in_ch != out_ch:  # projection shortcut (1x1, stride 1: CIR-D pools afterwards)
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: BxCinxHxW -> BxCoutx(H-2)x(W-2)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        if self.last_relu:
            out = self.relu(out)
        return _crop(out, 1)


def _layer(in_ch: int, planes: int, units: int, downsample: bool, last_relu: bool) -> nn.Sequential:
    out_ch = planes * EXPANSION
    layers: list[nn.Module] = [CIRUnit(in_ch, planes)]
    if downsample:  # CIR-D: the first unit, then a max pool for the stride
        layers.append(nn.MaxPool2d(2, 2))
    for i in range(1, units):
        layers.append(CIRUnit(out_ch, planes, last_relu=last_relu or i < units - 1))
    return nn.Sequential(*layers)


class CIResNet22(nn.Module):
    """SiamDW CIResNet-22 with a `width` multiplier on every layer's channels."""

    total_stride = 8

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        stem = max(1, round(STEM * width))
        p1, p2 = (max(1, round(p * width)) for p in PLANES)
        self.out_channels = p2 * EXPANSION
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2, 2)
        # the names and indices follow SiamDW's, so its checkpoints map over key by key
        self.layer1 = _layer(stem, p1, UNITS[0], downsample=False, last_relu=True)
        self.layer2 = _layer(p1 * EXPANSION, p2, UNITS[1], downsample=True, last_relu=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """SiamDW's init: Kaiming-normal (fan_out) convs, BN = identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: Bx3x127x127 -> Bx512x5x5;  Bx3x255x255 -> Bx512x21x21
        x = self.relu(self.bn1(self.conv1(x)))  # Bx64x64x64 (127) / 128x128 (255), stride 2
        x = self.maxpool(_crop(x, 2))  # crop the 7x7 conv's padding: 30x30 / 62x62, stride 4
        x = self.layer1(x)  # Bx256x24x24 / 56x56
        return self.layer2(x)  # Bx512x5x5 / 21x21, stride 8
