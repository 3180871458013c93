"""What a Siamese model is made of: which backbone, how wide, how its logits are scaled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Backbone = Literal["alexnet", "resnet22"]


@dataclass
class ModelConfig:
    backbone: Backbone = "alexnet"
    """Feature extractor: 'alexnet' (SiamFC AlexNet, AlexPUL) or 'resnet22' (SiamDW
    CIResNet-22, ResPUL)."""
    width: float = 1.0
    """Channel multiplier of the backbone: 1.0 is the published network, 0.25 a slim CPU model."""
    out_scale: float = 0.001
    """Factor on the cross-correlation response (siamfc-pytorch 0.001; SiamDW used 0.1)."""
    embed_dim: int = 128
    """Size of the unit-norm embedding of the contrastive projection head."""

    def __post_init__(self) -> None:
        if self.backbone not in get_args(Backbone):
            raise ValueError(
                f"backbone must be one of {list(get_args(Backbone))}, got {self.backbone!r}"
            )
        if not 0.0 < self.width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if not self.out_scale > 0.0:
            raise ValueError(f"out_scale must be positive, got {self.out_scale}")
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be at least 1, got {self.embed_dim}")
