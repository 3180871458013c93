"""The pipeline: data -> stage 1 -> mining -> stage 3 -> evaluation -> registration.

Each step is skipped when its output already exists for the same inputs (see steps.py), so
rerunning the same command after a crash, a Ctrl-C or a preemption continues where it
stopped; inside a step, the jobs resume on their own (training from its last checkpoint,
packing and mining from their finished shards). One parent MLflow run per pipeline (the
config + code version), with a nested run per stage.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from jobs.config import save_config, to_dict
from jobs.errors import JobError
from jobs.evaluation.evaluate import STILL, EvalRequest, evaluate
from jobs.evaluation.report import format_table
from jobs.mine import mine
from jobs.pack import pack
from jobs.pipeline.config import PipelineConfig
from jobs.pipeline.steps import Step, run_step, step
from jobs.tracking.runs import code_version, log_params, resolve_uri, tracked_run
from jobs.train.job import train_stage
from pul.models import build_model
from pul.weights import save_weights
from shards.content_hash import tree_digest
from shards.footage import FOOTAGE, bundled_footage
from shards.inspect_set import contact_sheet
from shards.manifest import read_manifest, sha256_file
from shards.pack import plan_hash
from shards.readers import read_sources
from shards.synth import generate
from shards.verify import verify_set

log = logging.getLogger(__name__)
PARENT = "mlflow.parentRunId"
"""The tag that makes MLflow show a run nested under another."""
TRACKER = {"alexnet": "alexpul", "resnet22": "respul"}
"""Evaluation name of the pipeline's tracker, by backbone."""


@dataclasses.dataclass
class Context:
    cfg: PipelineConfig
    work: Path
    uri: str
    code: str
    parent: str = ""
    parent_folder: Path | None = None
    steps_total: int = 0
    steps_seen: int = 0
    steps_skipped: int = 0

    def announce(self, title: str) -> None:
        self.steps_seen += 1
        print(f"\n== [{self.steps_seen}/{self.steps_total}] {title}", flush=True)

    def run(self, s: Step, body: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        self.steps_skipped += int(s.done)
        return run_step(s, body, _say)

    def tags(self, stage: str) -> dict[str, str]:
        return {PARENT: self.parent, "pul.stage": stage, "pul.code_version": self.code}


def run_pipeline(
    cfg: PipelineConfig, work: str | Path, inputs_only: bool = False
) -> dict[str, Any]:
    """Run (or continue) the pipeline in `work`; returns the summary the CLI prints.

    inputs_only: stop after mining, with the benchmark made: what experiments start from
    (clips, the stage-1 model, mined pairs, the benchmark folder under "benchmark")."""
    work = Path(work).resolve()
    _check(cfg)
    ctx = Context(cfg, work, resolve_uri(cfg.tracking_uri, work), code_version())
    ctx.steps_total = _count_steps(cfg, inputs_only)
    name = "inputs" if inputs_only else "pipeline"
    ctx.parent_folder = step(ctx.work, name, config=to_dict(ctx.cfg), code=ctx.code).folder
    tags = {"pul.stage": name, "pul.code_version": ctx.code}
    started = time.time()
    # the parent run, like each step's, ends FINISHED, FAILED or KILLED with its block
    with tracked_run(ctx.uri, cfg.experiment, ctx.parent_folder, "pipeline", tags) as opened:
        client, ctx.parent = opened
        _describe_parent(ctx, client)
        summary = _run_inputs(ctx) if inputs_only else _run_steps(ctx)
    summary["seconds"] = round(time.time() - started, 1)
    summary["steps"] = {"total": ctx.steps_total, "skipped": ctx.steps_skipped}
    summary.update(work=str(work), tracking_uri=ctx.uri, parent_run=ctx.parent)
    (work / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _check(cfg: PipelineConfig) -> None:
    data = cfg.data
    if not (data.clips or data.sources or data.footage or data.synth):
        raise JobError("no training data: set data.clips, data.sources, data.footage or data.synth")
    if not (cfg.benchmark.root or cfg.benchmark.synth):
        raise JobError("no benchmark: set benchmark.root=DIR or benchmark.synth")
    unknown = [name for name in data.footage if name not in FOOTAGE]
    if unknown:
        raise JobError(f"unknown footage {unknown}: bundled are {sorted(FOOTAGE)}")
    bundled_footage(data.footage)  # its packages are installed: fail before the first step
    for path in [*data.sources, *([data.clips] if data.clips else [])]:
        if not Path(path).exists():
            raise JobError(f"no such path: {path}")
    if cfg.benchmark.root and not Path(cfg.benchmark.root).exists():
        raise JobError(f"benchmark root not found: {cfg.benchmark.root}")


def _count_steps(cfg: PipelineConfig, inputs_only: bool = False) -> int:
    synth = int(cfg.data.synth is not None) + int(cfg.benchmark.synth is not None)
    if inputs_only:
        return synth + 3  # clips, bd, mine
    # clips, bd, (mine, tc) per round, eval (+ register)
    return synth + 3 + 2 * cfg.rounds + int(cfg.register)


def _describe_parent(ctx: Context, client: Any) -> None:
    config_file = save_config(ctx.cfg, ctx.parent_folder / "config.yaml")
    log_params(client, ctx.parent, to_dict(ctx.cfg))
    client.log_artifact(ctx.parent, str(config_file))
    print(f"pipeline run {ctx.parent} at {ctx.uri}; work folder {ctx.work}", flush=True)


def _run_steps(ctx: Context) -> dict[str, Any]:
    clips = _clips(ctx)
    bd = _bd(ctx, clips)
    rounds = []
    model = bd  # what the round mines with and starts from
    for number in range(1, ctx.cfg.rounds + 1):
        pairs = _mine(ctx, clips, model, number)
        model = _tc(ctx, pairs, model, number)
        rounds.append({"round": number, "pairs": pairs, "tc": model})
    scores = _evaluate(ctx, rounds, bd)
    for r in rounds:
        r["scores"] = scores["scores"][_round_name(ctx, r["round"])]
    summary: dict[str, Any] = {
        "clips": clips,
        "bd": bd,
        "pairs": pairs,
        "tc": model,
        "rounds": [_round_facts(r) for r in rounds],
        "eval": scores,
    }
    if ctx.cfg.register:
        summary["registered"] = _register(ctx, clips, pairs, model, scores)
    return summary


def _run_inputs(ctx: Context) -> dict[str, Any]:
    clips = _clips(ctx)
    bd = _bd(ctx, clips)
    pairs = _mine(ctx, clips, bd, 1)
    root, _ = _benchmark(ctx)
    return {"clips": clips, "bd": bd, "pairs": pairs, "benchmark": root}


# -- data ------------------------------------------------------------------------------


def _synth(ctx: Context, name: str, synth_cfg: Any, title: str) -> Path:
    s = step(ctx.work, name, config=to_dict(synth_cfg), code=ctx.code)
    ctx.announce(title)

    def body(folder: Path) -> dict[str, Any]:
        generate(synth_cfg, folder / "videos")
        return {"path": str(folder / "videos")}

    return Path(ctx.run(s, body)["path"])


def _clips(ctx: Context) -> dict[str, Any]:
    data = ctx.cfg.data
    if data.clips:
        return _verified(ctx, Path(data.clips))
    sources = list(data.sources)
    sources += [str(path) for path in bundled_footage(data.footage).values()]
    synth_key = ""
    if data.synth is not None:
        videos = _synth(ctx, "synth-train", data.synth, "synthetic training videos")
        sources.append(str(videos))
        synth_key = videos.parent.name
    pack_cfg = dataclasses.replace(ctx.cfg.pack, sources=sources)
    refs = read_sources(sources, pack_cfg.format, pack_cfg.split_cuts)
    s = step(ctx.work, "clips", plan=plan_hash(refs, pack_cfg), synth=synth_key, code=ctx.code)
    ctx.announce(f"pack {len(refs)} videos into clip shards")

    def body(folder: Path) -> dict[str, Any]:
        manifest = pack(pack_cfg, folder / "shards", command=["pul", "pipeline"])
        sheet = contact_sheet(folder / "shards", folder / "contact-sheet.png")
        return {**_clip_facts(folder / "shards", manifest), "contact_sheet": str(sheet)}

    return ctx.run(s, body)


def _verified(ctx: Context, folder: Path) -> dict[str, Any]:
    manifest = read_manifest(folder)
    if manifest.kind != "clips":
        raise JobError(f"{folder} holds {manifest.kind!r} shards; the pipeline starts from clips")
    # by the shards' bytes too: a shard changed after verification must be verified again
    content = tree_digest(folder)
    path = str(folder.resolve())
    s = step(ctx.work, "verify", lineage=manifest.lineage, content=content, path=path)
    ctx.announce(f"verify the clip shards in {folder}")

    def body(_: Path) -> dict[str, Any]:
        bad = [r.name for r in verify_set(folder) if not r.ok]
        if bad:
            raise JobError(f"{folder}: shards failed verification: {', '.join(bad)}")
        return _clip_facts(folder, manifest)

    return ctx.run(s, body)


def _clip_facts(folder: Path, manifest: Any) -> dict[str, Any]:
    return {
        "path": str(folder.resolve()),
        "lineage": manifest.lineage,
        "clips": manifest.samples,
        "frames": manifest.extra.get("frames"),
        "shards": len(manifest.shards),
    }


# -- training and mining ---------------------------------------------------------------


def _stage_config(ctx: Context, cfg: Any, **fields: Any) -> Any:
    return dataclasses.replace(cfg, experiment=ctx.cfg.experiment, tracking_uri=ctx.uri, **fields)


def _content(cfg: Any, *skip: str) -> dict[str, Any]:
    """A stage config minus the fields the pipeline fills in or that do not change results."""
    return {k: v for k, v in to_dict(cfg).items() if k not in {"tracking_uri", *skip}}


def _bd(ctx: Context, clips: dict[str, Any]) -> dict[str, Any]:
    cfg = _stage_config(ctx, ctx.cfg.bd, data=clips["path"])
    s = step(ctx.work, "bd", clips=clips["lineage"], config=_content(cfg, "data"), code=ctx.code)
    ctx.announce(f"stage 1: background discrimination, {cfg.train.steps} steps")
    return ctx.run(s, lambda folder: _train(ctx, "bd", cfg, folder))


def _train(ctx: Context, name: str, cfg: Any, folder: Path, number: int = 0) -> dict[str, Any]:
    tags = _round_tags(ctx, name, number) if number else ctx.tags(name)
    model = train_stage(name, cfg, folder, tags=tags)
    run_id = (folder / "DONE").read_text().strip()
    return {"model": str(model), "sha256": sha256_file(model), "run_id": run_id}


def _round_step(name: str, number: int) -> str:
    """Round 1's steps keep their plain names (and so the work of earlier versions)."""
    return name if number == 1 else f"{name}-round{number}"


def _round_tags(ctx: Context, stage: str, number: int) -> dict[str, str]:
    return {**ctx.tags(stage), "pul.round": str(number)}


def _mine(
    ctx: Context, clips: dict[str, Any], model: dict[str, Any], number: int
) -> dict[str, Any]:
    """Mine the clips with `model`: the stage-1 model in round 1, then the latest tracker."""
    cfg = dataclasses.replace(ctx.cfg.mine, data=clips["path"], model=model["model"])
    s = step(
        ctx.work,
        _round_step("pairs", number),
        clips=clips["lineage"],
        model=model["sha256"],
        config=cfg.content_fields(),
        code=ctx.code,
    )
    by = "the stage-1 model" if number == 1 else f"the round-{number - 1} tracker"
    ctx.announce(f"stage 2 (round {number}): mine pairs from {clips['clips']} clips with {by}")

    def body(folder: Path) -> dict[str, Any]:
        tags = _round_tags(ctx, "mine", number)
        with tracked_run(ctx.uri, ctx.cfg.experiment, folder, "mine", tags) as opened:
            client, run_id = opened
            client.set_tag(run_id, "pul.data_lineage", clips["lineage"])
            log_params(client, run_id, cfg.content_fields())
            manifest = mine(cfg, folder / "shards", command=["pul", "pipeline"])
            metrics = _mining_metrics(manifest.extra, clips["clips"])
            for key, value in metrics.items():
                client.log_metric(run_id, key, float(value))
        return {
            "path": str((folder / "shards").resolve()),
            "lineage": manifest.lineage,
            "run_id": run_id,
            **{k: metrics[k] for k in ("pairs", "clips_with_pairs", "pairs_on_target")},
        }

    return ctx.run(s, body)


def _mining_metrics(extra: dict[str, Any], clips: int) -> dict[str, float]:
    if not extra["pairs"]:
        raise JobError(
            f"mining kept no pairs from {clips} clips: train stage 1 longer, "
            "or loosen mine.mining.min_confidence / max_cycle_error"
        )
    cycle = extra.get("cycle_error_px") or {}
    # where clips carry hidden truth (synthetic videos): how many seeds sat on the target
    on_target = (extra.get("quality") or {}).get("pairs_on_target", 0)
    return {
        "pairs": extra["pairs"],
        "clips_with_pairs": extra["clips_with_pairs"],
        "mean_confidence": extra["mean_confidence"],
        "pairs_on_target": on_target,
        "share_on_target": on_target / extra["pairs"],
        **{f"cycle_error_px_{k}": v for k, v in cycle.items()},
    }


def _tc(ctx: Context, pairs: dict[str, Any], init: dict[str, Any], number: int) -> dict[str, Any]:
    """Stage 3 on the round's pairs, from `init` (the stage-1 model, then the last tracker)."""
    cfg = _stage_config(ctx, ctx.cfg.tc, data=pairs["path"], init=init["model"])
    if number > 1 and ctx.cfg.round_steps:
        cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, steps=ctx.cfg.round_steps)
        )
    s = step(
        ctx.work,
        _round_step("tc", number),
        pairs=pairs["lineage"],
        init=init["sha256"],
        config=_content(cfg, "data", "init"),
        code=ctx.code,
    )
    ctx.announce(
        f"stage 3 (round {number}): tracker from {pairs['pairs']} mined pairs, "
        f"{cfg.train.steps} steps"
    )
    return ctx.run(s, lambda folder: _train(ctx, "tc", cfg, folder, number))


# -- evaluation and registration -------------------------------------------------------


def _benchmark(ctx: Context) -> tuple[str, str]:
    """The benchmark folder and the hash of its content (every frame and label file)."""
    bench = ctx.cfg.benchmark
    if bench.synth is not None:
        videos = _synth(ctx, "synth-bench", bench.synth, "synthetic benchmark (held out)")
        root = videos
    else:
        root = Path(bench.root).resolve()
    # by content, not (path, size): a label corrected in place keeps its size
    return str(root), tree_digest(root)


def _round_name(ctx: Context, number: int) -> str:
    """The evaluation name of a round's tracker: the last round's is the tracker's own."""
    name = TRACKER[ctx.cfg.tc.model.backbone]
    return name if number == ctx.cfg.rounds else f"{name}-round{number}"


def _round_facts(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "round": r["round"],
        "pairs": r["pairs"]["pairs"],
        "clips_with_pairs": r["pairs"]["clips_with_pairs"],
        "pairs_on_target": r["pairs"].get("pairs_on_target"),
        "model": r["tc"]["model"],
        **r["scores"],
    }


def _eval_step(ctx: Context, rounds: list[dict[str, Any]], bd: dict[str, Any]) -> tuple[Step, str]:
    """The evaluation step and the benchmark folder it scores on."""
    root, content = _benchmark(ctx)
    bench = ctx.cfg.benchmark
    earlier = {"earlier": [r["tc"]["sha256"] for r in rounds[:-1]]} if len(rounds) > 1 else {}
    s = step(
        ctx.work,
        "eval",
        benchmark=content,
        format=bench.format,
        sequences=bench.sequences,
        tc=rounds[-1]["tc"]["sha256"],
        bd=bd["sha256"],
        untrained=_content(ctx.cfg.tc.model),
        code=ctx.code,
        **earlier,
    )
    return s, root


def _evaluate(ctx: Context, rounds: list[dict[str, Any]], bd: dict[str, Any]) -> dict[str, Any]:
    s, root = _eval_step(ctx, rounds, bd)
    bench = ctx.cfg.benchmark
    ctx.announce("evaluate the new tracker (each round's), stage 1 alone and the baselines")
    name = _round_name(ctx, ctx.cfg.rounds)
    trackers = {_round_name(ctx, r["round"]): r["tc"]["model"] for r in rounds}

    def body(folder: Path) -> dict[str, Any]:
        # opened first: an evaluation that fails (a missing sequence, a bad layout) is a
        # FAILED eval run, not a missing one
        with tracked_run(ctx.uri, ctx.cfg.experiment, folder, "eval", ctx.tags("eval")) as opened:
            client, run_id = opened
            untrained = _untrained(ctx, folder / "untrained.pt")
            request = EvalRequest(
                benchmark=bench.format,
                root=root,
                out=str(folder),
                models={**trackers, "stage1-bd": bd["model"], "untrained": str(untrained)},
                baselines=[STILL],
                sequences=list(bench.sequences),
                workers=ctx.cfg.eval_workers,
            )
            scores = evaluate(request)
            for tracker, score in scores.items():
                for key in ("auc", "precision_20", "norm_precision_20"):
                    client.log_metric(run_id, f"{tracker}.{key}", float(getattr(score, key)))
            for artifact in sorted(folder.glob("*.png")) + [folder / "table.md"]:
                client.log_artifact(run_id, str(artifact))
        return {
            "tracker": name,
            "benchmark": root,
            "run_id": run_id,
            "table": format_table(scores),
            "scores": {t: _headline(score) for t, score in scores.items()},
        }

    return ctx.run(s, body)


def _headline(score: Any) -> dict[str, float]:
    return {k: float(getattr(score, k)) for k in ("auc", "precision_20", "norm_precision_20")}


def _untrained(ctx: Context, path: Path) -> Path:
    """The stage-3 network as initialised (seed 0): the bar a learned tracker must clear."""
    torch.manual_seed(0)
    model = build_model(ctx.cfg.tc.model)
    model.projection = None
    return save_weights(model, ctx.cfg.tc.model, path)


def _register(
    ctx: Context,
    clips: dict[str, Any],
    pairs: dict[str, Any],
    tc: dict[str, Any],
    scores: dict[str, Any],
) -> dict[str, Any]:
    from jobs.tracking.registry import register_tracker  # MLflow's model code is slow to import

    s = step(ctx.work, "register", model=tc["sha256"], eval=scores["run_id"], uri=ctx.uri)
    ctx.announce(f"register the tracker (alias {ctx.cfg.alias})")
    own = scores["scores"][scores["tracker"]]

    def body(folder: Path) -> dict[str, Any]:
        metrics = {
            "auc": own["auc"],
            "precision": own["precision_20"],
            "norm_precision": own["norm_precision_20"],
            "untrained_auc": scores["scores"]["untrained"]["auc"],
        }
        tags = {
            "pul.data_lineage": clips["lineage"],
            "pul.pairs_lineage": pairs["lineage"],
            "pul.code_version": ctx.code,
            "pul.benchmark": scores["benchmark"],
            "pul.pipeline_run": ctx.parent,
            "pul.train_run": tc["run_id"],
        }
        config = ctx.parent_folder / "config.yaml"
        name, version = register_tracker(
            Path(tc["model"]),
            tracking_uri=ctx.uri,
            run_id=ctx.parent,
            metrics=metrics,
            tags=tags,
            config_file=config,
            alias=ctx.cfg.alias,
        )
        return {"name": name, "version": version, "alias": ctx.cfg.alias}

    return ctx.run(s, body)


def _say(message: str) -> None:
    print(f"   {message}", flush=True)
