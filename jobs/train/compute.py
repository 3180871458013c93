"""How a step computes: precision, memory layout and compilation, resolved for a device.

`auto` means what pays where: bf16 autocast and channels_last on CUDA devices that support
them (tensor cores prefer NHWC), plain fp32 and NCHW on CPUs (bf16 convolutions are slower
than fp32 on CPUs without AMX, and oneDNN reorders NCHW itself). `torch.compile` is opt-in
(train.compile=true): it pays only on long runs, after minutes of compiling.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from jobs.train.config import TrainConfig


@dataclass(frozen=True)
class Compute:
    device: torch.device
    bf16: bool
    channels_last: bool
    compile: bool

    @classmethod
    def resolve(cls, cfg: TrainConfig, device: torch.device) -> Compute:
        cuda = device.type == "cuda"
        if cfg.precision == "bf16":
            bf16 = True
        elif cfg.precision == "fp32":
            bf16 = False
        else:
            bf16 = cuda and torch.cuda.is_bf16_supported()
        layout = {"always": True, "never": False}.get(cfg.channels_last, cuda)
        return cls(device, bf16, layout, cfg.compile)

    def prepare(self, model: nn.Module) -> nn.Module:
        """The model in this layout, compiled if asked (in place: state_dict keys unchanged)."""
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.compile:
            model.compile()
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def describe(self) -> dict[str, str]:
        """For the run's tags: what the steps really ran with."""
        return {
            "pul.precision": "bf16" if self.bf16 else "fp32",
            "pul.channels_last": str(self.channels_last).lower(),
            "pul.compiled": str(self.compile).lower(),
        }
