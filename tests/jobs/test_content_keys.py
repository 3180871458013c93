"""'Same inputs' means the same bytes: the pipeline keys the benchmark and a reused shard set
by their content, and the code version tells one uncommitted edit from another."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from jobs.errors import JobError
from jobs.pack import pack
from jobs.pipeline.config import BenchmarkConfig, DataConfig, PipelineConfig
from jobs.pipeline.run import Context, _benchmark, _eval_step, _verified
from jobs.tracking.runs import code_version
from shards.pack_config import PackConfig
from shards.synth import SynthConfig, generate
from tests.shards.clip_fixtures import make_otb_set

MODELS = {"tc": {"sha256": "a" * 64}, "bd": {"sha256": "b" * 64}}


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    """The content-hash cache of this test, not the user's ~/.cache/pul."""
    monkeypatch.setenv("PUL_CACHE_DIR", str(tmp_path / "hash-cache"))


def _context(tmp_path: Path, **cfg) -> Context:
    return Context(PipelineConfig(**cfg), tmp_path / "work", "sqlite:///unused.db", "v1")


def _edit_label(bench: Path) -> Path:
    """Change one digit of the first box of seq01: the file keeps its size."""
    label = bench / "seq01" / "groundtruth_rect.txt"
    text = label.read_text()
    digit = next(i for i, c in enumerate(text) if c.isdigit())
    edited = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :]
    label.write_text(edited)
    assert len(edited) == len(text) and edited != text
    return label


def test_an_edited_benchmark_label_of_the_same_size_gets_a_new_eval_step(tmp_path):
    bench = make_otb_set(tmp_path / "bench", videos=2, frames=6)
    ctx = _context(tmp_path, benchmark=BenchmarkConfig(root=str(bench)))
    root, before = _benchmark(ctx)
    step_before, _ = _eval_step(ctx, [{"round": 1, "tc": MODELS["tc"]}], MODELS["bd"])
    assert root == str(bench.resolve())

    label = _edit_label(bench)
    _, after = _benchmark(ctx)
    step_after, _ = _eval_step(ctx, [{"round": 1, "tc": MODELS["tc"]}], MODELS["bd"])
    assert after != before
    assert step_after.folder != step_before.folder
    assert step_after.folder.parent == step_before.folder.parent == tmp_path / "work"

    # the edit undone: the same content, the first step's folder (a rerun skips it)
    text = label.read_text()
    digit = next(i for i, c in enumerate(text) if c.isdigit())
    label.write_text(text[:digit] + str((int(text[digit]) - 1) % 10) + text[digit + 1 :])
    assert (
        _eval_step(ctx, [{"round": 1, "tc": MODELS["tc"]}], MODELS["bd"])[0].folder
        == step_before.folder
    )


def test_a_reused_shard_set_changed_after_verification_is_verified_again(tmp_path):
    videos = tmp_path / "videos"
    generate(SynthConfig(videos=2, frames=12, width=160, height=120, seed=1), videos, False)
    clips = tmp_path / "clips"
    pack(PackConfig(sources=[str(videos)], workers=1, clip_len=12), clips, ["t"], False)
    ctx = _context(tmp_path, data=DataConfig(clips=str(clips)))
    first = _verified(ctx, clips)
    assert first["clips"] == 2 and ctx.steps_skipped == 0
    assert _verified(ctx, clips)["key"] == first["key"] and ctx.steps_skipped == 1

    shard = sorted(clips.glob("clips-*.tar"))[0]
    blob = bytearray(shard.read_bytes())
    blob[2000] ^= 0xFF  # damaged in place: same size, and the manifest still vouches for it
    shard.write_bytes(bytes(blob))
    with pytest.raises(JobError, match=f"shards failed verification: {shard.name}"):
        _verified(ctx, clips)
    assert ctx.steps_skipped == 1


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "model.py").write_text("WIDTH = 1\n")
    (repo / ".gitignore").write_text("build/\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return repo


def test_two_uncommitted_edits_give_two_code_versions(repo):
    commit = _git(repo, "rev-parse", "HEAD")
    clean = code_version(repo)
    (repo / "model.py").write_text("WIDTH = 2\n")  # same size as the committed file
    first = code_version(repo)
    (repo / "model.py").write_text("WIDTH = 3\n")
    second = code_version(repo)
    assert len({clean, first, second}) == 3
    assert clean == commit[:12]
    assert first.startswith(f"{commit[:12]}-dirty-") and second.startswith(f"{commit[:12]}-dirty-")
    (repo / "model.py").write_text("WIDTH = 2\n")
    assert code_version(repo) == first  # the same edit, the same version

    (repo / "model.py").write_text("WIDTH = 1\n")
    assert code_version(repo) == clean  # undone: the commit's version


def test_new_untracked_code_counts_but_ignored_files_and_notes_do_not(repo):
    clean = code_version(repo)
    (repo / "notes.txt").write_text("not code\n")
    (repo / "build").mkdir()
    (repo / "build" / "generated.py").write_text("X = 1\n")  # ignored by .gitignore
    assert code_version(repo) == clean
    (repo / "configs").mkdir()
    (repo / "configs" / "new.yaml").write_text("steps: 5\n")
    with_preset = code_version(repo)
    assert with_preset.startswith(f"{clean}-dirty-")
    (repo / "configs" / "new.yaml").write_text("steps: 6\n")
    assert code_version(repo) not in {clean, with_preset}


def test_outside_a_git_checkout_the_package_version(tmp_path, repo):
    (tmp_path / "plain").mkdir()
    assert code_version(tmp_path / "plain") == f"pul-{version('pul')}"
    inside = repo / "build"  # a folder inside someone else's checkout is not the package's
    inside.mkdir()
    assert code_version(inside) == f"pul-{version('pul')}"
