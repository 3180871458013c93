"""pul.pairs.make_pair for a whole batch, on the source crops' device (GPU in training).

Stage 3 reads each mined pair as two stored crops (shards/pairs.py: z.jpg around the
template, x.jpg around the search box) with the boxes in those crops' pixels. Here N such
pairs, stacked (every z.jpg one size, every x.jpg one size), become the network's template
and search crops with one grid_sample per side: the template square of context_size
around the z box; the search square around the x box, stretched and shifted at random,
with the shift returned as the target offset; both gray with gray_prob. Padding is each
source crop's mean colour, as crop_and_resize pads.

The random part is drawn on the device for all N at once (`draw_pairs_batch`), with
pul.pairs.draw_pair's distributions; `DevicePairDraw.pair(i)` hands pair i's draw to
make_pair, which is how the two paths are tested against each other. Outputs are rounded
to integers, the values the uint8 path gives the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pul.crops import CONTEXT, EXEMPLAR_SIZE
from pul.pairs import PairConfig, PairDraw
from pul.warp_device import crop_and_resize_batch


@dataclass
class DevicePairDraw:
    """The random part of N pairs, on one device."""

    scale: torch.Tensor
    """N stretch factors of the search crops (float32)."""
    shift: torch.Tensor
    """N x 2 target offsets (x, y) from the search-crop centre, search pixels (float32)."""
    gray: torch.Tensor
    """N bools: both crops of the pair turned gray."""

    def pair(self, i: int) -> PairDraw:
        """Pair i's draw for pul.pairs.make_pair (copies to the host: for tests, not steps)."""
        return PairDraw(
            float(self.scale[i]), self.shift[i].cpu().double().numpy(), bool(self.gray[i])
        )


def draw_pairs_batch(
    n: int,
    cfg: PairConfig,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> DevicePairDraw:
    """The random part of n pairs, drawn on `device` (the generator, if any, lives there)."""

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator, device=device)

    return DevicePairDraw(
        scale=uniform(1 - cfg.stretch, 1 + cfg.stretch),
        shift=uniform(-cfg.max_shift, cfg.max_shift, 2),
        gray=torch.rand(n, generator=generator, device=device) < cfg.gray_prob,
    )


def make_pairs_batch(
    z_src: torch.Tensor,
    z_boxes: torch.Tensor,
    x_src: torch.Tensor,
    x_boxes: torch.Tensor,
    cfg: PairConfig,
    generator: torch.Generator | None = None,
    draw: DevicePairDraw | None = None,
    templates: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N training pairs from their source crops, all on the sources' device.

    z_src: N x 3 x Hz x Wz, x_src: N x 3 x Hx x Wx (uint8, BGR); z_boxes, x_boxes: N x 4
    (x, y, w, h) in those crops' pixel-edge coordinates. draw: the random part to apply
    (None: drawn here); templates: the pairs' exemplars_batch, when the caller has them
    already (None: cut here). Returns (templates N x 3 x exemplar^2, searches N x 3 x instance^2,
    both float32 with integer values 0..255; offsets N x 2 float32, search pixels).
    """
    if len(z_src) != len(x_src) or len(z_boxes) != len(z_src) or len(x_boxes) != len(x_src):
        raise ValueError("need as many template and search sources and boxes")
    if draw is None:
        draw = draw_pairs_batch(len(z_src), cfg, z_src.device, generator)
    if templates is None:
        templates = exemplars_batch(z_src, z_boxes, cfg.exemplar, cfg.context)
    z = templates
    x_boxes = x_boxes.float()
    x_size = _context_size(x_boxes, cfg.context) * (cfg.instance / cfg.exemplar) * draw.scale
    # The crop's centre moves against the shift, so the target lands shift pixels off centre.
    centre = _centre(x_boxes) - draw.shift * (x_size / cfg.instance)[:, None]
    x = crop_and_resize_batch(x_src, centre, x_size, cfg.instance).round_()
    gray = draw.gray[:, None, None, None]
    return torch.where(gray, _gray(z), z), torch.where(gray, _gray(x), x), draw.shift.float()


def exemplars_batch(
    z_src: torch.Tensor,
    z_boxes: torch.Tensor,
    exemplar_size: int = EXEMPLAR_SIZE,
    context: float = CONTEXT,
) -> torch.Tensor:
    """Un-augmented templates (what the tracker sees; jobs/train/tc.py's `exemplar`):
    N x 3 x H x W uint8 sources, N x 4 boxes in their pixels -> float32 N x 3 x S x S,
    S = exemplar_size, integer values 0..255."""
    z_boxes = z_boxes.float()
    size = _context_size(z_boxes, context)
    return crop_and_resize_batch(z_src, _centre(z_boxes), size, exemplar_size).round_()


def _centre(boxes: torch.Tensor) -> torch.Tensor:
    """N x 4 (x, y, w, h) -> N x 2 centres (pul.crops.box_center)."""
    return boxes[:, :2] + boxes[:, 2:] / 2


def _context_size(boxes: torch.Tensor, context: float) -> torch.Tensor:
    """N sides of SiamFC's exemplar square (pul.crops.context_size)."""
    w, h = boxes[:, 2], boxes[:, 3]
    p = context * (w + h)
    return torch.sqrt((w + p) * (h + p))


def _gray(crops: torch.Tensor) -> torch.Tensor:
    # As pul.pairs._gray: the plain mean of the three channels, truncated to an integer.
    return crops.mean(dim=1, keepdim=True).floor_().expand_as(crops)
