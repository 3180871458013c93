"""How the networks run when they only track: a prepared copy of the net, and pass sizes.

Measured with bench/track_speed.py --ablate (trackers interleaved frame by frame, full-width
untrained nets, 2-core CPU, torch 2.13, 2026-12-06; frames/s of the single device tracker
unless said otherwise):
- Folding each eval-mode BatchNorm2d into the convolution before it (with running
  statistics it is an affine map per channel): AlexNet 11.3 -> 11.7, CIResNet-22 7.0 -> 7.3
  (+4-5%). Kept. Done on a deep copy: the original keeps its batch norms and its training.
  Same function up to float rounding, about 1e-6 of the features' magnitude.
- channels_last weights: AlexNet 9.0 (channels first) -> 11.7; CIResNet-22 7.3 -> 5.0,
  because each of its units ends in `_crop(...).contiguous()`, which turns the features
  back to channels first, so every convolution converts twice. So: AlexNet only. (The plain
  tracker's AlexNet already ran channels_last by accident: its crops reach the net as a
  permuted, NHWC-strided view, and nothing in AlexNet converts back.)
- Crops per backbone pass, 8 sequences tracked at once (aggregate frames/s): all 24 crops
  in one pass: AlexNet 10.6, CIResNet-22 4.3; one 3-crop pyramid per pass: 11.9 and 7.6.
  A 2-core CPU is saturated by 3 crops and bigger passes only cost cache (CIResNet-22's
  per-crop time grows from 38 ms at 3 crops to 64 ms at 24). So one pyramid per pass on a
  CPU, one pass for all crops on CUDA (where batching is the point).
- bf16 autocast: CUDA only, not measured here (`--bf16` in the benchmark).
The boxes do not depend on the pass size (bit for bit, on CPU); folding and the layout
change the float rounding, so they can move a box where two peaks nearly tie.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from pul.models.alexnet import AlexNet
from pul.models.siamese import SiamNet
from pul.tracker_config import TrackerConfig


def tracking_net(net: SiamNet, fuse_bn: bool = True, channels_last: bool | None = None) -> SiamNet:
    """An eval-mode deep copy of `net` for tracking: conv -> batch norm pairs folded
    (`fuse_bn`), weights in channels_last memory format (`channels_last`; None: where it
    measured faster, AlexNet). With channels_last weights a convolution produces
    channels_last features whatever the layout of its input."""
    twin = copy.deepcopy(net).eval()
    if fuse_bn:
        fuse_batchnorms(twin.backbone)
    if channels_last is None:
        channels_last = isinstance(net.backbone, AlexNet)
    if channels_last:
        twin.to(memory_format=torch.channels_last)
    return twin


def crops_per_pass(device: torch.device | str, cfg: TrackerConfig) -> int | None:
    """Crops per backbone pass for `BatchSiamFCTracker` on `device`: all (None) on CUDA,
    one scale pyramid on a CPU (bigger passes measured slower there; see above)."""
    return None if torch.device(device).type == "cuda" else cfg.scale_num


def fuse_batchnorms(module: nn.Module) -> int:
    """Fold each BatchNorm2d into the Conv2d it follows, in place (eval mode); how many.

    A pair is a Conv2d child directly followed by a BatchNorm2d child of the same parent,
    either inside an nn.Sequential or named convK / bnK (the layout of both backbones);
    the batch norm becomes an Identity. Registration order alone would not prove that the
    norm is applied to that convolution's output: the two conventions do.
    """
    if module.training:
        raise ValueError("fold batch norms in eval mode only (they use running statistics)")
    fused = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if not (isinstance(parent, nn.Sequential) or _paired_names(conv_name, bn_name)):
                continue
            setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(parent, bn_name, nn.Identity())
            fused += 1
    return fused


def _paired_names(conv_name: str, bn_name: str) -> bool:
    return conv_name.startswith("conv") and bn_name == "bn" + conv_name[len("conv") :]
