"""A picture of what a model has learned: response maps on a few labeled pairs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from jobs.train.pair_stream import PairSampler  # noqa: E402
from jobs.train.shared import draw_pool, embed_pool  # noqa: E402
from pul.ahm import ahm_batches  # noqa: E402
from pul.crops import to_tensor  # noqa: E402
from pul.pairs import PairConfig  # noqa: E402
from pul.weights import load_weights  # noqa: E402
from shards.reader import clip_stream  # noqa: E402


def response_picture(
    model_file: Path, data: str, out: Path, cfg: PairConfig, pairs: int = 4
) -> Path:
    """Response maps on the first labeled pairs of a clip-shard set."""
    samples = []
    for item in clip_stream(data, transform=PairSampler(cfg, seed=0)):
        samples.append(item)
        if len(samples) == pairs:
            break
    return plot_responses(model_file, samples, out, cfg.instance)


def plot_responses(model_file: Path, samples: list[dict], out: Path, instance: int) -> Path:
    """Template, search crop (target marked) and response map, one row per pair sample
    ({"z": 3xHxW uint8, "x": 3xHxW uint8, "offset": (x, y) from the search centre})."""
    model = load_weights(model_file, "cpu")
    fig, axes = plt.subplots(len(samples), 3, figsize=(7.5, 2.5 * len(samples)), squeeze=False)
    for row, sample in zip(axes, samples, strict=True):
        z = sample["z"].permute(1, 2, 0).numpy()
        x = sample["x"].permute(1, 2, 0).numpy()
        with torch.inference_mode():
            response = model(to_tensor(z), to_tensor(x))[0, 0].sigmoid().numpy()
        target = sample["offset"].numpy() + instance / 2
        row[0].imshow(z[..., ::-1])
        row[0].set_title("template")
        row[1].imshow(x[..., ::-1])
        row[1].plot(*target, "g+", markersize=14, mew=2)
        row[1].set_title("search (+ target)")
        shown = row[2].imshow(response, cmap="viridis", vmin=0, vmax=1)
        peak = np.unravel_index(response.argmax(), response.shape)
        row[2].plot(peak[1], peak[0], "r.", markersize=8)
        row[2].set_title(f"response (max {response.max():.2f})")
        fig.colorbar(shown, ax=row[2], fraction=0.046)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def ahm_picture(model_file: Path, cfg, out: Path, rows: int = 4, cols: int = 8) -> Path:
    """AHM mini-batches of the trained network: each row an anchor and its nearest neighbours.

    `cfg` is a BDConfig (data, patches, patches_per_frame); the pool is drawn with seed 0.
    """
    net = load_weights(model_file, "cpu")
    rng = np.random.default_rng(0)
    stream = clip_stream(cfg.data, resampled=True, seed=0)
    pool = draw_pool(
        iter(stream), min(cfg.pool, 512), cfg.patches_per_frame, cfg.patches, rng, stream.skips
    )
    index = embed_pool(net, pool)
    batches = list(ahm_batches(index, cols, rng, "ahm", num_batches=rows))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows), squeeze=False)
    for row, batch in zip(axes, batches, strict=True):
        for col, (ax, i) in enumerate(zip(row, batch, strict=True)):
            ax.imshow(pool[i][..., ::-1])
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_title("anchor", fontsize=8)
    fig.suptitle("AHM mini-batches: anchor + nearest neighbours in embedding space")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
