"""Siamese models: SiamFC AlexNet and SiamDW CIResNet-22 backbones, the correlation head,
the contrastive projection head, and `build_model` from a `ModelConfig`."""

from pul.models.alexnet import AlexNet
from pul.models.config import ModelConfig
from pul.models.head import XCorr
from pul.models.projection import Projection
from pul.models.resnet22 import CIResNet22
from pul.models.siamese import SiamNet, build_backbone, build_model

__all__ = [
    "AlexNet",
    "CIResNet22",
    "ModelConfig",
    "Projection",
    "SiamNet",
    "XCorr",
    "build_backbone",
    "build_model",
]
