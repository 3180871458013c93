"""The mine job: clip shards + a model -> pair shards, in-process and on Ray, resumable.

The clips: a block-textured square drifting over a smooth background (OTB layout with
ground truth, packed one clip per shard). Only boxes on the square pass the texture test,
so the seeds land on it, and an untrained width-0.25 AlexNet follows it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import jobs.mine
from jobs.config import ConfigError, describe, load_config
from jobs.errors import JobError
from jobs.mine import MineJobConfig, mine
from jobs.pack import pack
from pul.mining import MiningConfig
from shards.errors import ShardError
from shards.manifest import read_manifest
from shards.pack_config import PackConfig
from shards.pairs import X_OUT, Z_OUT, read_pairs
from tests.helpers import save_untrained

SIDE = 40

pytestmark = pytest.mark.usefixtures("one_thread")  # what a Ray task gets


def make_videos(root: Path, videos: int = 2, frames: int = 12) -> Path:
    """OTB-layout sequences: a 40 px block-textured square over a smooth background."""
    for v in range(videos):
        rng = np.random.default_rng(v)
        seq = root / f"sq{v:02d}"
        (seq / "img").mkdir(parents=True)
        small = rng.integers(60, 200, (4, 5, 3), dtype=np.uint8)
        background = cv2.resize(small, (160, 120), interpolation=cv2.INTER_CUBIC)
        blocks = rng.integers(0, 2, (SIDE // 4, SIDE // 4, 3), dtype=np.uint8) * 255
        square = np.kron(blocks, np.ones((4, 4, 1), np.uint8))
        lines = []
        for f in range(frames):
            x, y = 30 + 2 * f + 10 * v, 30 + f
            image = background.copy()
            image[y : y + SIDE, x : x + SIDE] = square
            cv2.imwrite(str(seq / "img" / f"{f + 1:04d}.jpg"), image)
            lines.append(f"{x},{y},{SIDE},{SIDE}")
        (seq / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mine")
    videos = make_videos(root / "otb")
    cfg = PackConfig(sources=[str(videos)], workers=1, clip_len=12, shard_mb=0.001)
    pack(cfg, root / "clips", command=["test"], progress=False)
    return root / "clips", save_untrained(root / "model.pt")


def job_config(inputs, **fields) -> MineJobConfig:
    clips, model = inputs
    # seeds of about the square's size (36-43 px): more of them cover the whole square
    mining = MiningConfig(
        seeds_per_clip=3, candidates=128, gaps=(2, 4), seed_min=0.3, seed_max=0.36, max_aspect=1.2
    )
    return MineJobConfig(data=str(clips), model=str(model), mining=mining, **fields)


@pytest.fixture(scope="module")
def mined(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mined") / "pairs"
    mine(job_config(inputs, workers=1), out, command=["test"], progress=False)
    return out


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("pairs-*.tar"))}


def test_one_pair_shard_per_clip_shard_with_statistics(inputs, mined):
    manifest = read_manifest(mined)
    assert manifest.kind == "pairs"
    assert read_manifest(inputs[0]).kind == "clips" and len(read_manifest(inputs[0]).shards) == 2
    assert [s.name for s in manifest.shards] == ["pairs-000000.tar", "pairs-000001.tar"]
    assert not (mined / ".staging").exists() and (mined / "config.yaml").is_file()
    extra = manifest.extra
    assert extra["pairs"] == manifest.samples > 0
    assert extra["clips"] == 2 and extra["clips_with_pairs"] >= 1
    assert sum(extra["pairs_per_gap"].values()) == extra["pairs"]
    assert set(extra["pairs_per_gap"]) <= {"2", "4"}
    assert 0.5 <= extra["mean_confidence"] <= 1.5
    assert extra["cycle_error_px"]["p50"] <= extra["cycle_error_px"]["p99"] <= 0.1 * 43
    quality = extra["quality"]  # the clips carry ground truth
    assert quality["pairs_on_target"] >= 1
    assert quality["within_8px"] == 1.0 and quality["gt_error_px"]["p99"] < 4.0
    assert manifest.config["mining"]["gaps"] == [2, 4]
    pairs = [p for shard in manifest.shards for p in read_pairs(mined / shard.name)]
    assert len(pairs) == manifest.samples
    for pair in pairs:
        assert "." not in pair.key and pair.key.startswith(pair.record.clip)
        assert pair.z.shape == (Z_OUT, Z_OUT, 3) and pair.x.shape == (X_OUT, X_OUT, 3)
        assert pair.record.frames[1] - pair.record.frames[0] == pair.record.gap
        # the seed box sits in the middle of z, the mined box in the middle of x
        zx, zy, zw, zh = pair.record.z_box
        assert abs(zx + zw / 2 - Z_OUT / 2) < 1e-2 and abs(zy + zh / 2 - Z_OUT / 2) < 1e-2
        xx, _, xw, _ = pair.record.x_box
        assert abs(xx + xw / 2 - X_OUT / 2) < 1e-2


@pytest.mark.ray
def test_ray_tasks_write_the_same_bytes(inputs, mined, tmp_path, ray_local):
    out = tmp_path / "pairs"
    manifest = mine(job_config(inputs, workers=0), out, command=["test"], progress=False)
    assert shard_bytes(out) == shard_bytes(mined)
    assert manifest.lineage == read_manifest(mined).lineage


def test_a_lost_shard_is_mined_again_to_the_same_bytes(inputs, mined, tmp_path):
    out = tmp_path / "pairs"
    shutil.copytree(mined, out)
    before = read_manifest(out)
    lost = next(s.name for s in before.shards if s.samples > 0)
    (out / lost).unlink()
    after = mine(job_config(inputs, workers=1), out, command=["test"], progress=False)
    assert after.lineage == before.lineage
    assert shard_bytes(out) == shard_bytes(mined)
    # a finished set is reused as it is
    stamp = (out / "pairs-000000.tar").stat().st_mtime_ns
    again = mine(job_config(inputs, workers=1), out, command=["test"], progress=False)
    assert again.lineage == before.lineage
    assert (out / "pairs-000000.tar").stat().st_mtime_ns == stamp


class Killed(BaseException):
    """What a kill looks like from inside: nothing of the job's own handles it."""


def test_an_interrupted_run_resumes_from_its_staging(inputs, mined, tmp_path, monkeypatch):
    out = tmp_path / "pairs"
    real = jobs.mine.mine_shard
    calls: list[int] = []

    def killed_in_the_second_shard(source, index, target, model, cfg):
        calls.append(index)
        if index == 1:
            target.with_name(target.name + ".part").write_bytes(b"half")
            raise Killed
        return real(source, index, target, model, cfg)

    monkeypatch.setattr(jobs.mine, "mine_shard", killed_in_the_second_shard)
    with pytest.raises(Killed):
        mine(job_config(inputs, workers=1), out, command=["test"], progress=False)
    staged = out / ".staging" / "pairs-000000.tar"
    assert calls == [0, 1] and staged.is_file() and not (out / "manifest.json").exists()
    first = staged.stat()

    def counted(source, index, target, model, cfg):
        calls.append(index)
        return real(source, index, target, model, cfg)

    calls.clear()
    monkeypatch.setattr(jobs.mine, "mine_shard", counted)
    manifest = mine(job_config(inputs, workers=1), out, command=["test"], progress=False)
    assert calls == [1]  # the staged shard is not mined again
    kept = (out / "pairs-000000.tar").stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # moved as is
    assert manifest.lineage == read_manifest(mined).lineage
    assert shard_bytes(out) == shard_bytes(mined)
    assert not (out / ".staging").exists()


def test_a_folder_holding_another_set_is_refused(inputs, mined, tmp_path):
    with pytest.raises(ShardError, match="different shard set"):
        mine(job_config(inputs, workers=1, seed=1), mined, command=["test"], progress=False)
    stranger = tmp_path / "other"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="not empty"):
        mine(job_config(inputs, workers=1), stranger, command=["test"], progress=False)
    with pytest.raises(JobError, match="no such model"):
        cfg = job_config(inputs, workers=1)
        cfg.model = str(tmp_path / "missing.pt")
        mine(cfg, tmp_path / "x", command=["test"], progress=False)


def test_the_config_loads_from_overrides_and_documents_every_field():
    cfg = load_config(
        MineJobConfig,
        overrides=["data=d", "model=m", "mining.gaps=[2, 8]", "mining.tracker.scale_num=5"],
    )
    assert cfg.mining.gaps == (2, 8) and cfg.mining.tracker.scale_num == 5
    lines = describe(MineJobConfig)
    assert len(lines) == 37 and all(line.split(": ", 1)[1] for line in lines)
    with pytest.raises(ConfigError, match="gaps must be positive and increasing"):
        load_config(MineJobConfig, overrides=["mining.gaps=[4, 2]"])
    with pytest.raises(ConfigError, match="workers"):
        load_config(MineJobConfig, overrides=["workers=-1"])
