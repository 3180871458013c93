"""The Siamese network: one backbone for both images, a correlation head, a projection head."""

from __future__ import annotations

import torch
from torch import nn

from pul.models.alexnet import AlexNet
from pul.models.config import ModelConfig
from pul.models.head import XCorr
from pul.models.projection import Projection
from pul.models.resnet22 import CIResNet22


class SiamNet(nn.Module):
    """Backbone shared by exemplar and search images, SiamFC head on top.

    Inputs are BGR images as float 0..255 (see `pul.crops.to_tensor`); SiamFC feeds raw pixel
    values and lets the first batch norm do the normalisation.
    The projection head is used only by the contrastive losses; tracking never calls it.
    """

    def __init__(self, backbone: nn.Module, head: XCorr, projection: Projection | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.projection = projection

    @property
    def total_stride(self) -> int:
        """Pixels of the input per step of the response map (8 for both backbones)."""
        return self.backbone.total_stride

    @property
    def out_channels(self) -> int:
        """Channels of the backbone features."""
        return self.backbone.out_channels

    def features(self, img: torch.Tensor) -> torch.Tensor:
        # img: Bx3xHxW -> BxCxhxw
        return self.backbone(img)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # z: Bx3x127x127, x: Bx3x255x255 -> response Bx1x17x17
        return self.head(self.features(z), self.features(x))

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        # img: Bx3xHxW -> unit-norm embeddings BxD
        if self.projection is None:
            raise RuntimeError("this SiamNet has no projection head")
        return self.projection(self.features(img))


def build_backbone(cfg: ModelConfig) -> nn.Module:
    """The backbone named by `cfg`, freshly initialised as in its original code."""
    if cfg.backbone == "alexnet":
        return AlexNet(cfg.width)
    return CIResNet22(cfg.width)


def build_model(cfg: ModelConfig) -> SiamNet:
    """A freshly initialised SiamNet (backbone, XCorr head, projection head) for `cfg`."""
    backbone = build_backbone(cfg)
    projection = Projection(backbone.out_channels, cfg.embed_dim)
    return SiamNet(backbone, XCorr(cfg.out_scale), projection)
