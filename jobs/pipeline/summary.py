"""What a finished pipeline prints: the scores, where the model went, what to do next."""

from __future__ import annotations

import shlex
from typing import Any


def format_summary(
    summary: dict[str, Any], track_example: tuple[str, str] = ("VIDEO.mp4", "X,Y,W,H")
) -> str:
    """The final report; `track_example` is a video and a box in its first frame."""
    ev = summary["eval"]
    scores = ev["scores"]
    own, untrained = scores[ev["tracker"]], scores["untrained"]
    margin = own["auc"] - untrained["auc"]
    verdict = "beats" if margin > 0 else "does NOT beat"
    uri = summary["tracking_uri"]
    lines = [
        "",
        f"== PUL pipeline finished in {summary['seconds'] / 60:.1f} min ({summary['work']})"
        + _skipped(summary),
        "",
        f"held-out benchmark: {ev['benchmark']}",
        ev["table"],
        "",
        f"{ev['tracker']} {verdict} the untrained network: AUC {own['auc']:.3f} vs "
        f"{untrained['auc']:.3f} ({margin:+.3f}); P@20 {own['precision_20']:.3f} vs "
        f"{untrained['precision_20']:.3f}",
        f"data: {summary['clips']['clips']} clips -> {summary['pairs']['pairs']} mined pairs"
        f"{_on_target(summary['pairs'])} (lineage {summary['clips']['lineage'][:12]})",
        *_rounds(summary.get("rounds") or []),
        f"model file: {summary['tc']['model']}",
    ]
    env = f"MLFLOW_TRACKING_URI={shlex.quote(uri)}"
    registered = summary.get("registered")
    if registered:
        model = f"models:/{registered['name']}@{registered['alias']}"
        lines += [
            f"registered: {registered['name']} version {registered['version']} "
            f"(alias {registered['alias']}) in {uri}",
            "",
            "next:",
            f"  {env} pul models list",
            f"  {env} pul eval --root {shlex.quote(ev['benchmark'])} --model {model} --workers 1",
            f"  {env} pul track {shlex.quote(track_example[0])} --model {model} "
            f"--box {track_example[1]} --out tracked.mp4",
        ]
    else:
        lines += ["", "next:"]
    lines.append(f"  pul mlflow serve --backend-store-uri {shlex.quote(uri)}   # then open the UI")
    return "\n".join(lines)


def _on_target(pairs: dict[str, Any]) -> str:
    """How many pairs sat on a hidden synthetic target (mining measures it where it can)."""
    hits = pairs.get("pairs_on_target")
    if not hits:
        return ""
    return f", {hits} on a synthetic target ({100 * hits / pairs['pairs']:.0f}%)"


def _rounds(rounds: list[dict[str, Any]]) -> list[str]:
    """One line per progressive round (none for a single round: the table says it all)."""
    if len(rounds) < 2:
        return []
    return [
        f"round {r['round']}: {r['pairs']} pairs from {r['clips_with_pairs']} clips"
        f"{_on_target(r)} -> "
        f"AUC {r['auc']:.3f}, P@20 {r['precision_20']:.3f}"
        for r in rounds
    ]


def _skipped(summary: dict[str, Any]) -> str:
    steps = summary.get("steps") or {}
    if not steps.get("skipped"):
        return ""
    return f"; {steps['skipped']} of {steps['total']} steps were done before"
