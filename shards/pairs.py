"""Pair shards: the mined correspondences of stage 2, one WebDataset sample per pair.

A sample, keyed `<clip key>_s<seed frame>_t<target frame>_<seed index>` (no dots), holds:

- `z.jpg` (Z_OUT x Z_OUT): the template side, a square of Z_SIDE x the SiamFC exemplar
  square (`context_size` of the seed box) around the seed box. That is the exemplar's own
  pixel density (255 / 2c = 127.5 / c), so the 127 px exemplar is the central 127 px of
  z.jpg, and 64 px of margin on every side leave room to shift and stretch the template.
- `x.jpg` (X_OUT x X_OUT): the search side, a square of X_SIDE x the SiamFC search square
  (S = c x 255 / 127 for the mined box's c) around the mined box, at about the search
  crop's density (384 / 1.5 S = 256 / S). Stage 3 cuts its 255 px search crop from it,
  shifted so the target sits up to `max_shift` px off centre and stretched by up to
  `stretch`: the crop stays inside x.jpg while
      (1 + stretch) x (1/2 + max_shift / 255) <= X_SIDE / 2,
  i.e. +/-32 px with +/-5% (0.657 <= 0.75), and up to +/-54 px at +/-5%.
- `json`: a PairRecord: the boxes in each crop's pixels (`z_box`, `x_box`) and in the
  frames' (`seed_box`, `box`), confidence, cycle error, gap, the clip key, the frame
  indices within the clip and in the original video, and `gt_error_px` only for a seed on
  the hidden target of a clip with ground truth: how far (frame pixels) the mined centre is
  from where the seed's centre moved with the target. It measures mining; training never
  reads it.
  As written into a shard, the json also holds `crc32`: the CRC-32 of each crop's JPEG bytes
  ({"z.jpg": ..., "x.jpg": ...}), so a reader tells a damaged crop (which may still decode,
  to a visibly broken image) from a valid one, as it does for clip frames. Sets mined
  before it existed have none and are read unchecked.

This package does not import `pul`: the crops come in as arrays (jobs/mine.py cuts them
with pul.crops), and the geometry here is only the numbers of the format.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from shards.reader import CorruptSample
from shards.tario import read_members, write_members

SHARD_PATTERN = "pairs-{:06d}.tar"
"""Pair shard i holds the pairs mined from clip shard i of the input set."""
Z_OUT = 255
"""Side in pixels of the stored template-side crop `z.jpg`."""
Z_SIDE = 2.0
"""z.jpg spans this many SiamFC exemplar squares (context_size of the seed box)."""
X_OUT = 384
"""Side in pixels of the stored search-side crop `x.jpg`."""
X_SIDE = 1.5
"""x.jpg spans this many SiamFC search squares (of the mined box)."""
FIELDS = ("z.jpg", "x.jpg", "json")
"""The members of a pair sample, after its key."""
CROPS = ("z.jpg", "x.jpg")
"""The members that are crops (JPEG), each with a CRC-32 in the json."""
GOOD_PAIR_PX = 8.0
"""A mined box within this many pixels of where its seed went counts as right (quality)."""

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PairRecord:
    """The `json` of a pair sample (boxes are (x, y, w, h), 0-based pixel edges)."""

    clip: str
    """Key of the clip the pair was mined from."""
    seed_index: int
    """Which seed of the clip (0, 1, ...)."""
    seed_frame: int
    """Template frame, as an index within the clip."""
    target_frame: int
    """Search frame, as an index within the clip."""
    frames: tuple[int, int]
    """Template and search frames as indices of the original video."""
    gap: int
    """target_frame - seed_frame."""
    seed_box: Box
    """The seed box in its frame's pixels."""
    box: Box
    """The mined box in its frame's pixels."""
    z_box: Box
    """The seed box in z.jpg's pixels."""
    x_box: Box
    """The mined box in x.jpg's pixels."""
    confidence: float
    """Response peak at the search frame relative to the seed's self-match peak."""
    cycle_error: float
    """Forward-backward cycle error in frame pixels."""
    gt_error_px: float | None = None
    """Distance (frame pixels) of the mined centre from where the seed's centre moved with
    the hidden target; only for seeds on the target of clips with ground truth, only to
    measure mining: training never reads it."""

    @property
    def key(self) -> str:
        return f"{self.clip}_s{self.seed_frame:04d}_t{self.target_frame:04d}_{self.seed_index}"

    def to_json(self) -> bytes:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(_rounded(data), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> PairRecord:
        return cls.from_dict(json.loads(data))

    @classmethod
    def from_dict(cls, raw: dict) -> PairRecord:
        names = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class PairSample:
    """A decoded pair: the record and both crops (BGR uint8)."""

    key: str
    record: PairRecord
    z: np.ndarray
    x: np.ndarray
    shard: str = ""
    """Path of the shard the pair came from (names it when the pair turns out damaged)."""


def box_in_crop(box: Iterable[float], centre: Iterable[float], side: float, out: int) -> Box:
    """A frame box in the pixels of a square crop of `side` frame pixels around `centre`,
    resized to `out` (the map of pul.crops: p -> (p - centre) * out / side + out / 2)."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = (float(v) for v in centre)
    scale = out / side
    return (
        (x - cx) * scale + out / 2,
        (y - cy) * scale + out / 2,
        w * scale,
        h * scale,
    )


def pair_sample(
    record: PairRecord, z: np.ndarray, x: np.ndarray, jpeg_quality: int = 90
) -> dict[str, bytes | str]:
    """The WebDataset sample of one pair: {'__key__', 'z.jpg', 'x.jpg', 'json'}."""
    key = record.key
    if "." in key or "/" in key:
        raise ValueError(f"a pair key must hold no dots or slashes: {key!r}")
    if z.shape != (Z_OUT, Z_OUT, 3) or x.shape != (X_OUT, X_OUT, 3):
        raise ValueError(f"crops must be {Z_OUT}^2 and {X_OUT}^2 BGR, got {z.shape}, {x.shape}")
    return {
        "__key__": key,
        "z.jpg": _jpeg(z, jpeg_quality),
        "x.jpg": _jpeg(x, jpeg_quality),
        "json": record.to_json(),
    }


def write_pair_shard(path: Path, samples: Iterable[dict[str, bytes | str]]) -> int:
    """Write samples into one tar, atomically and deterministically; returns their count.

    Each sample's json gains the CRC-32 of its crops as they are stored (`crc32`)."""
    count = 0

    def members() -> Iterator[tuple[str, bytes]]:
        nonlocal count
        for sample in samples:
            sample = {**sample, "json": with_checksums(sample)}
            for name in FIELDS:
                yield f"{sample['__key__']}.{name}", sample[name]
            count += 1

    write_members(Path(path), members())
    return count


def with_checksums(sample: dict[str, bytes | str]) -> bytes:
    """The sample's json with the CRC-32 of each crop added (`crc32`)."""
    meta = json.loads(sample["json"])
    meta["crc32"] = {name: zlib.crc32(sample[name]) for name in CROPS}
    return json.dumps(meta, sort_keys=True).encode()


def raw_samples(path: Path) -> Iterator[dict[str, bytes | str]]:
    """The samples of a pair shard as {'__key__', 'z.jpg', 'x.jpg', 'json'} (undecoded)."""
    sample: dict[str, bytes | str] = {}
    for name, data in read_members(Path(path)):
        key, _, suffix = name.partition(".")
        if sample and sample["__key__"] != key:
            yield sample
            sample = {}
        sample["__key__"] = key
        sample[suffix] = data
    if sample:
        yield sample


def decode_pair(sample: dict[str, bytes | str]) -> PairSample:
    """A raw sample (from a tar or a WebDataset pipeline) -> PairSample; CorruptSample if
    a member is missing, fails its checksum or does not decode."""
    key = str(sample.get("__key__", "?"))
    try:
        meta = json.loads(sample["json"])
        _check_crops(key, sample, meta.get("crc32", {}))
        record = PairRecord.from_dict(meta)
        z, x = _unjpeg(sample["z.jpg"]), _unjpeg(sample["x.jpg"])
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CorruptSample(f"{key}: bad pair sample ({type(err).__name__}: {err})") from None
    return PairSample(key, record, z, x, str(sample.get("__url__", "")))


def _check_crops(key: str, sample: dict[str, bytes | str], checksums: dict[str, int]) -> None:
    """CorruptSample if a crop's bytes fail the CRC-32 stored at writing (none: unchecked)."""
    for name, crc in checksums.items():
        data = sample[name]
        if not isinstance(data, bytes) or zlib.crc32(data) != crc:
            raise CorruptSample(f"{key}: {name} fails its checksum")


def decode_record(sample: dict[str, bytes | str]) -> PairRecord:
    """A raw sample's record alone, crops left encoded; CorruptSample if it is unusable."""
    try:
        return PairRecord.from_json(sample["json"])
    except (KeyError, ValueError, TypeError) as err:
        key = sample.get("__key__", "?")
        raise CorruptSample(f"{key}: bad pair record ({type(err).__name__}: {err})") from None


def read_pairs(path: Path) -> Iterator[PairSample]:
    """Every pair of a shard, decoded."""
    for sample in raw_samples(path):
        yield decode_pair(sample)


def read_records(path: Path) -> Iterator[PairRecord]:
    """Every pair's record of a shard, without decoding the crops."""
    for sample in raw_samples(path):
        yield PairRecord.from_json(sample["json"])


def summarize(records: list[PairRecord], clips: int) -> dict:
    """Totals and quality figures of a pair set, for the manifest's `extra`."""
    gaps: dict[str, int] = {}
    for r in records:
        gaps[str(r.gap)] = gaps.get(str(r.gap), 0) + 1
    summary = {
        "pairs": len(records),
        "clips": clips,
        "clips_with_pairs": len({r.clip for r in records}),
        "pairs_per_gap": dict(sorted(gaps.items(), key=lambda kv: int(kv[0]))),
        "mean_confidence": _mean(r.confidence for r in records),
        "cycle_error_px": _percentiles([r.cycle_error for r in records]),
    }
    truth = [r.gt_error_px for r in records if r.gt_error_px is not None]
    if truth:
        summary["quality"] = {
            "pairs_on_target": len(truth),
            f"within_{GOOD_PAIR_PX:g}px": round(float(np.mean(np.array(truth) < GOOD_PAIR_PX)), 4),
            "gt_error_px": _percentiles(truth),
        }
    return summary


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(float(np.mean(values)), 4) if values else None


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3)}


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def _unjpeg(data: bytes | str) -> np.ndarray:
    if not isinstance(data, bytes):
        raise TypeError("expected JPEG bytes")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("JPEG does not decode")
    return image


def _rounded(value):
    """Floats to 3 decimals (a thousandth of a pixel): short, stable json."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
