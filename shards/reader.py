"""Streaming clips out of shards for training and evaluation.

Frames stay JPEG bytes until a consumer asks for one (`Clip.frame(i)`): a training stage
that samples two frames of a 32-frame clip decodes two. Damaged data never crashes a run:
a tar that cannot be read, a sample without valid metadata, or a frame (or pair crop) whose
bytes fail their CRC-32 is skipped, counted in `SkipCounter` and logged, whether it is found
in the stream's own decode stage or later, when a consumer decodes a frame it kept
(`SkipCounter.attempt`). Only a share of damaged samples above the counter's limit stops
the stream, with one line naming the damaged shards.

For DDP, `resampled=True` draws shards at random (a different stream per rank and worker,
seeded) and `epoch_samples` fixes how many samples each rank sees, so every rank runs the
same number of steps. With `resampled=False` the shard list is split explicitly across
ranks (nodes) and DataLoader workers, for one exact pass (evaluation, verification).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import webdataset as wds

from shards.errors import ShardError
from shards.manifest import shard_paths
from shards.tarscan import TarDamage, iter_tar

log = logging.getLogger(__name__)
T = TypeVar("T")


class CorruptSample(Exception):
    """A sample whose bytes are damaged: it is skipped, never trained on."""


@dataclass
class Clip:
    """One clip: metadata plus still-encoded frames."""

    key: str
    meta: dict[str, Any]
    jpegs: list[bytes]
    shard: str = ""
    """Path of the shard the clip came from (names it when the clip turns out damaged)."""

    def __len__(self) -> int:
        return len(self.jpegs)

    def frame(self, i: int) -> np.ndarray:
        """Decode frame i (BGR uint8), checking it against the CRC-32 stored at packing."""
        data = self.jpegs[i]
        if zlib.crc32(data) != self.meta["crc32"][i]:
            raise CorruptSample(f"{self.key}: frame {i} fails its checksum")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CorruptSample(f"{self.key}: frame {i} does not decode")
        return image

    def gt(self, i: int) -> list[float] | None:
        """Ground-truth box of frame i (labeled sources only; the PUL stages never read it)."""
        boxes = self.meta.get("gt")
        return None if boxes is None else boxes[i]


@dataclass
class SkipCounter:
    """How many samples this process read and skipped, by reason. Logged as it grows.

    Damage is skipped one sample at a time, up to a limit: more than
    max(`floor`, `max_share` x samples read) distinct damaged samples stop the stream with
    a ShardError naming the damaged shards (a resampled stream meets the same damaged
    sample again and again, so distinct ones are what is compared; `max_share=None`: no
    limit). A stream that yields nothing but damage (every shard missing or unreadable)
    would spin forever: after `max_in_a_row` consecutive skips it stops too.
    """

    counts: Counter = field(default_factory=Counter)
    max_in_a_row: int = 200
    in_a_row: int = 0
    max_share: float | None = None
    floor: int = 0
    read: int = 0
    """Samples that came out of the tars (damaged or not)."""
    damaged: dict[str, set[str]] = field(default_factory=dict)
    """Shard path -> keys of its damaged samples ('' for a tar that could not be read)."""
    reported: int = 0
    """How many of the skips `take_unreported` has handed out already."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def damaged_samples(self) -> int:
        return sum(len(keys) for keys in self.damaged.values())

    def skip(self, reason: str, detail: str, shard: str = "", key: str = "") -> None:
        self.counts[reason] += 1
        self.in_a_row += 1
        self.damaged.setdefault(shard, set()).add(key)
        if self.in_a_row >= self.max_in_a_row:
            raise ShardError(f"{self.in_a_row} damaged samples in a row, last: {detail}")
        self._check_share()
        log.warning(
            "skipped a damaged sample (%s, %d skipped so far): %s", reason, self.total, detail
        )

    def attempt(self, item: Any, work: Callable[[Any], T]) -> T | None:
        """`work(item)`, or None when that finds the item damaged (CorruptSample), which is
        then counted. The one place damage is caught: the stream's decode stage goes through
        it, and so does a consumer that decodes a frame of a clip it kept for later."""
        try:
            result = work(item)
        except CorruptSample as err:
            self.skip("corrupt sample", str(err), *_origin(item))
            return None
        self.in_a_row = 0
        return result

    def tar_error(self, err: Exception, shard: str = "") -> bool:
        """webdataset handler: count the damaged tar and keep reading the next one."""
        self.skip("unreadable tar", f"{type(err).__name__}: {err}", shard)
        return True

    def take_unreported(self) -> int:
        """Skips since the last call: what a consumer adds to its running total."""
        fresh, self.reported = self.total - self.reported, self.total
        return fresh

    def _check_share(self) -> None:
        if self.max_share is None:
            return
        if self.damaged_samples > max(self.floor, self.max_share * self.read):
            raise ShardError(self.limit_message())

    def limit_message(self) -> str:
        shards = [s for s in self.damaged if s]
        return damage_message(
            self.damaged_samples, self.read, self.max_share or 0.0, self.floor, shards
        )


def damage_message(
    damaged: int, read: int, max_share: float, floor: int, shards: Iterable[str | Path]
) -> str:
    """One line: how much is damaged, against which limit, in which shards (and how to look)."""
    paths = sorted(Path(s) for s in shards)
    folder = str(paths[0].parent) if paths else "?"
    names = ", ".join(p.name for p in paths) or "unnamed shards"
    return (
        f"{damaged} of {read} samples read are damaged, more than max_damaged={max_share:g} "
        f"of them (or the {floor} always allowed): {names} in {folder}; "
        f"check them with `pul shards verify {folder}`"
    )


def _origin(item: Any) -> tuple[str, str]:
    """(shard, key) of a raw sample or of a decoded item (Clip, PairSample)."""
    if isinstance(item, dict):
        return str(item.get("__url__", "")), str(item.get("__key__", "?"))
    return str(getattr(item, "shard", "")), str(getattr(item, "key", "?"))


def to_clip(sample: dict[str, Any]) -> Clip:
    """A raw webdataset sample -> Clip; CorruptSample if its metadata is unusable."""
    key = sample.get("__key__", "?")
    try:
        meta = json.loads(sample["json"])
        names = [f"{i:04d}.jpg" for i in range(len(meta["frames"]))]
        jpegs = [sample[name] for name in names]
        if len(meta["crc32"]) != len(jpegs):
            raise ValueError("frame and checksum counts differ")
    except (KeyError, ValueError, TypeError) as err:
        raise CorruptSample(f"{key}: bad sample ({type(err).__name__}: {err})") from None
    return Clip(key, meta, jpegs, str(sample.get("__url__", "")))


def resolve_urls(source: str | Path | Iterable[str | Path]) -> list[str]:
    """A shard folder (read through its manifest), a single tar, or a list of tars."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        paths = shard_paths(path) if path.is_dir() else [path]
    else:
        paths = [Path(p) for p in source]
    # absolute: the stream may be read by a Ray worker whose working folder is elsewhere
    return [str(p.resolve()) for p in paths]


def clip_stream(
    source: str | Path | Iterable[str | Path],
    *,
    resampled: bool = False,
    epoch_samples: int | None = None,
    shuffle: int = 0,
    seed: int = 0,
    transform: Callable[[Clip], Any] | None = None,
    skips: SkipCounter | None = None,
    decode: Callable[[dict[str, Any]], Any] | None = None,
) -> wds.DataPipeline:
    """An iterable of Clips (or of `transform(clip)`), ready for a torch DataLoader.

    `transform` runs inside the pipeline so that a CorruptSample it raises while decoding
    a frame skips the sample instead of failing the step. `decode` turns a raw sample into
    the item (default `to_clip`; pair shards pass their own decoder).
    """
    urls = resolve_urls(source)
    skips = skips if skips is not None else SkipCounter()
    if resampled:
        stages: list[Any] = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
    else:
        stages = [wds.SimpleShardList(urls), wds.split_by_node, wds.split_by_worker]
    stages.append(_tar_samples(skips))
    if shuffle:
        stages.append(wds.shuffle(shuffle, seed=seed))
    stages.append(_decode_stage(decode or to_clip, transform, skips))
    pipeline = wds.DataPipeline(*stages)
    pipeline.skips = skips
    if epoch_samples is not None:
        pipeline = pipeline.with_epoch(epoch_samples)
    return pipeline


def _tar_samples(skips: SkipCounter):
    """Shard urls -> raw samples ({"__key__", "__url__", suffix: bytes}), members grouped by
    key; a damaged shard is counted and the stream moves on to the next one."""

    def run(shards: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for shard in shards:
            url = shard["url"]
            sample: dict[str, Any] = {}
            try:
                for name, data in iter_tar(url):
                    key, _, suffix = name.partition(".")
                    if sample and key != sample["__key__"]:
                        yield sample
                        sample = {}
                    sample.setdefault("__key__", key)
                    sample["__url__"] = url
                    sample[suffix] = data
                if sample:
                    yield sample
            except (OSError, TarDamage) as err:
                skips.tar_error(err, url)

    return run


def _decode_stage(decode, transform: Callable[[Any], Any] | None, skips: SkipCounter):
    def use(sample: dict[str, Any]) -> Any:
        clip = decode(sample)
        return transform(clip) if transform else clip

    def run(samples: Iterable[dict[str, Any]]) -> Iterator[Any]:
        for sample in samples:
            skips.read += 1
            item = skips.attempt(sample, use)
            if item is not None:  # a transform returns None to drop a clip it cannot use
                yield item

    return run
