"""Model files: the weights and the ModelConfig in one file that loads without running code.

A file is `torch.save` of plain data only:

    {"format": "pul-siamnet", "version": 1,
     "config": {"backbone": "alexnet", "width": 1.0, ...},   # ModelConfig as str/float/int
     "state_dict": {name: tensor}}

and is read back with `torch.load(weights_only=True)`, whose unpickler accepts tensors and
plain containers and refuses to call anything else: a model file from an untrusted place
(a shared run folder, a registry) cannot execute code on the machine that loads it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from pul.models.config import ModelConfig
from pul.models.siamese import SiamNet, build_model

FORMAT = "pul-siamnet"
VERSION = 1


def save_weights(model: SiamNet, cfg: ModelConfig, path: str | os.PathLike) -> Path:
    """Write `model`'s weights and `cfg` to `path` (atomically: a reader never sees half)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": dataclasses.asdict(cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_weights(path: str | os.PathLike, device: torch.device | str = "cpu") -> SiamNet:
    """The SiamNet saved at `path`, on `device`, in eval mode.

    Raises ValueError (one line) for a missing file, a file that is not a pul model, or one
    that would need to run code to load.
    """
    payload = _read(Path(path), device)
    try:
        cfg = ModelConfig(**payload["config"])
        model = build_model(cfg)
        if not any(key.startswith("projection.") for key in payload["state_dict"]):
            model.projection = None  # trained without a contrastive loss (e.g. supervised)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a pul model file for this code ({first})") from None
    return model.to(device).eval()


def _read(path: Path, device: torch.device | str) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: not a pul model file (no such file)")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # garbage bytes can fail anywhere in the unpickler
        # weights_only refuses a pickled callable ("unsupported GLOBAL posix.system");
        # random bytes surface as UnpicklingError, RuntimeError, EOFError, KeyError, ...
        reason = "it refers to code" if "GLOBAL" in str(err) else "unreadable"
        raise ValueError(f"{path}: not a pul model file ({reason})") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        raise ValueError(f"{path}: not a pul model file (no '{FORMAT}' format tag)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: not a pul model file of version {VERSION}")
    if not isinstance(payload.get("config"), dict) or not isinstance(
        payload.get("state_dict"), dict
    ):
        raise ValueError(f"{path}: not a pul model file (config or weights missing)")
    return payload
