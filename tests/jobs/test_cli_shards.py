"""`pul shards ...` from the command line: results, exit codes, and one-line refusals."""

from __future__ import annotations

import pytest

from shards.manifest import read_manifest
from tests.helpers import run_cli
from tests.shards.clip_fixtures import make_otb_set, write_video


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("pul: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def packed(tmp_path, capsys):
    src = make_otb_set(tmp_path / "otb", videos=2, frames=16)
    code, out, _ = run_cli(
        capsys,
        "shards",
        "pack",
        str(src),
        "--out",
        str(tmp_path / "clips"),
        "--workers",
        "1",
        "--no-progress",
        "clip_len=8",
    )
    assert code == 0 and "4 clips, 32 frames, 1 shards" in out
    return tmp_path / "clips"


def test_verify_passes_on_a_good_set(packed, capsys):
    code, out, _ = run_cli(capsys, "shards", "verify", str(packed))
    assert code == 0 and "1/1 shards ok, 4 samples" in out


def test_verify_names_a_shard_with_one_flipped_byte(packed, capsys):
    shard = packed / "clips-000000.tar"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    code, out, err = run_cli(capsys, "shards", "verify", str(packed))
    assert code == 1
    assert "BAD clips-000000.tar: sha256 differs from the manifest" in err
    assert "0/1 shards ok" in out


def test_verify_a_truncated_shard(packed, capsys):
    shard = packed / "clips-000000.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    code, _, err = run_cli(capsys, "shards", "verify", str(packed))
    assert code == 1 and "BAD clips-000000.tar: size 5000 != manifest" in err


def test_inspect_reports_sources_and_lineage(packed, capsys):
    code, out, _ = run_cli(
        capsys, "shards", "inspect", str(packed), "--sheet", str(packed / "s.png")
    )
    assert code == 0
    assert "otb" in out and "4 clips" in out and read_manifest(packed).lineage in out
    assert (packed / "s.png").stat().st_size > 1000


def test_pack_missing_path(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "shards",
        "pack",
        str(tmp_path / "nope.mp4"),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
    )
    assert code == 2 and "nope.mp4" in one_line_error(err)
    assert not (tmp_path / "o").exists()


def test_pack_zero_frame_video(tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    code, _, err = run_cli(
        capsys,
        "shards",
        "pack",
        str(tmp_path / "empty.mp4"),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
    )
    assert code == 2 and "empty.mp4" in one_line_error(err)


def test_pack_unknown_layout(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    code, _, err = run_cli(
        capsys,
        "shards",
        "pack",
        str(tmp_path / "junk"),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
    )
    assert code == 2 and "junk" in one_line_error(err)


def test_pack_refuses_a_folder_holding_another_set_and_keeps_it(packed, tmp_path, capsys):
    before = read_manifest(packed)
    video = write_video(tmp_path / "v.mp4")
    code, _, err = run_cli(
        capsys, "shards", "pack", str(video), "--out", str(packed), "--workers", "1"
    )
    assert code == 2 and "already holds a different shard set" in one_line_error(err)
    after = read_manifest(packed)
    assert after.lineage == before.lineage and after.to_json() == before.to_json()


def test_pack_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "precious.txt").write_text("keep me")
    video = write_video(tmp_path / "v.mp4")
    code, _, err = run_cli(capsys, "shards", "pack", str(video), "--out", str(tmp_path / "o"))
    assert code == 2 and "not empty" in one_line_error(err)
    assert (tmp_path / "o" / "precious.txt").read_text() == "keep me"


def test_an_unreadable_frame_fails_without_a_valid_looking_set(tmp_path, capsys):
    src = make_otb_set(tmp_path / "otb", videos=2, frames=16)
    (src / "seq01" / "img" / "0005.jpg").write_bytes(b"not a jpeg")
    code, _, err = run_cli(
        capsys,
        "shards",
        "pack",
        str(src),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
        "clip_len=8",
    )
    assert code == 2 and "0005.jpg" in one_line_error(err)
    assert not (tmp_path / "o" / "manifest.json").exists()
    assert not list((tmp_path / "o").glob("clips-*.tar"))


def test_verify_without_manifest_and_missing_folder(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    code, _, err = run_cli(capsys, "shards", "verify", str(tmp_path / "d"))
    assert code == 2 and "manifest.json is missing" in one_line_error(err)
    code, _, err = run_cli(capsys, "shards", "verify", str(tmp_path / "gone"))
    assert code == 2 and "gone" in one_line_error(err)


def test_bad_config_key_and_type(tmp_path, capsys):
    video = write_video(tmp_path / "v.mp4")
    code, _, err = run_cli(
        capsys, "shards", "pack", str(video), "--out", str(tmp_path / "o"), "clip_lenn=4"
    )
    assert code == 2 and "unknown config key 'clip_lenn' (did you mean 'clip_len'?)" in err
    code, _, err = run_cli(
        capsys, "shards", "pack", str(video), "--out", str(tmp_path / "o"), "clip_len=abc"
    )
    assert code == 2 and "clip_len: expected int, got 'abc'" in one_line_error(err)
    code, _, err = run_cli(
        capsys, "shards", "pack", str(video), "--out", str(tmp_path / "o"), "clip_len=1"
    )
    assert code == 2 and "clip_len must be at least 2" in one_line_error(err)


def test_config_show_documents_every_field(capsys):
    code, out, _ = run_cli(capsys, "config", "show", "pack")
    assert code == 0
    assert "clip_len (int, default 32): Consecutive frames per clip" in out
