"""What the stages share: the exported model file, pools of patches drawn from a clip
stream and embedded with the current network, and the DDP unwrapping."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from pul.ahm import build_index
from pul.models import ModelConfig, SiamNet
from pul.patches import PatchConfig, sample_patches
from pul.weights import save_weights
from shards.errors import ShardError
from shards.reader import Clip, SkipCounter

MODEL_FILE = "model.pt"
"""The weights every stage exports into its run folder (and MLflow)."""
READ_BOUND = 20
"""A pool gives up after reading this many stream items per item it needs (flat frames,
pairs beyond the gap limit): a stream without enough usable items must not spin forever."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module DDP wraps (or the model itself outside DDP)."""
    return model.module if hasattr(model, "module") else model


def export_net(net: SiamNet, cfg: ModelConfig, folder: str) -> None:
    """The tracker's network as `folder/model.pt`: weights and model config, no code."""
    save_weights(net, cfg, os.path.join(folder, MODEL_FILE))


def draw_pool(
    clips: Iterator[Clip], size: int, per_frame: int, cfg: PatchConfig, rng, skips: SkipCounter
) -> np.ndarray:
    """`size` patches (N x 127 x 127 x 3 uint8), from one random frame of each next clip.

    The frame is decoded here, after the stream handed the clip over, so a damaged one is
    skipped and counted through the stream's own `skips`, like damage found in the stream."""
    parts, count, clips_seen = [], 0, 0
    while count < size:
        if clips_seen == READ_BOUND * size:  # a stream of flat frames must not spin forever
            raise ShardError(f"could not cut {size} textured patches from {clips_seen} clips")
        clip = next(clips)
        clips_seen += 1
        frame = skips.attempt(clip, lambda c: c.frame(int(rng.integers(len(c)))))
        if frame is None:
            continue
        patches, _ = sample_patches(frame, min(per_frame, size - count), rng, cfg)
        if len(patches):
            parts.append(patches)
            count += len(patches)
    return np.concatenate(parts)


@torch.no_grad()
def embed_pool(net: SiamNet, pool: np.ndarray):
    """Index the pool with the current network, in eval mode (batch norm as at test time)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    index = build_index(net.embed, pool, device=device)
    net.train(was_training)
    return index


def to_chw(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 (numpy) -> N x 3 x H x W uint8 (torch), contiguous."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def channels_last_view(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 (numpy) -> N x 3 x H x W uint8 (torch) without a copy: a view with
    channels-last strides, which convolutions, grid_sample and `.float()` take as they are.
    (Making it contiguous costs about as much per pair as decoding its JPEG.)"""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
