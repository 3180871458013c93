"""The architecture's import rules (DESIGN.md), read from the source itself.

Every import statement counts: at module level, inside functions (lazy imports) and under
`if TYPE_CHECKING:`. A lazy import that closes a loop is still a loop in the design, and a
forbidden import hidden in a function still breaks `pul` on a bare GPU image.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pul", "shards", "jobs", "cluster")

FORBIDDEN: dict[str, set[str]] = {
    # the method runs where only torch, numpy and OpenCV are installed
    "pul": {"shards", "jobs", "cluster", "ray", "mlflow", "submitit", "webdataset", "tqdm"},
    "shards": {"pul", "jobs", "cluster"},
    # cluster knows how to run a job, not what a job does
    "cluster": {"pul", "shards", "jobs"},
    # inside jobs: the CLI is the top; MLflow, evaluation and training know nothing above them
    "jobs.tracking": {
        "jobs.cli",
        "jobs.pipeline",
        "jobs.tune",
        "jobs.sweep",
        "jobs.train",
        "jobs.evaluation",
    },
    "jobs.evaluation": {"jobs.cli", "jobs.pipeline", "jobs.tune", "jobs.sweep", "jobs.train"},
    "jobs.train": {"jobs.cli", "jobs.pipeline", "jobs.tune", "jobs.sweep"},
    "jobs.pipeline": {"jobs.cli", "jobs.tune", "jobs.sweep"},
}
"""Module prefix -> import prefixes that modules under it must not use."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a file imports, wherever the statement stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name resolves to its longest module)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        for _, name in imported_names(path):
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            target = ".".join(parts)
            if target and target != module:
                graph.setdefault(module, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    # a package's __init__ re-exporting its own submodules is not a loop in the design
    return [c for c in found if not all(under(m, c[0]) for m in c)]


def test_every_layer_imports_only_what_it_may():
    broken = []
    for module, path in project_modules().items():
        banned = {b for prefix, bans in FORBIDDEN.items() if under(module, prefix) for b in bans}
        for line, name in imported_names(path):
            hit = next((b for b in banned if under(name, b)), None)
            if hit and not under(module, hit):
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not broken, "layering broken:\n" + "\n".join(broken)


def test_no_import_cycle_between_files():
    found = cycles(import_graph(project_modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"p": {"p.x"}, "p.x": {"p"}}, []),  # a package and its own submodule
    ],
)
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert cycles(graph) == expected


def test_a_lazy_import_counts(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import ray\nif TYPE_CHECKING:\n    from jobs.x import Y\n")
    assert [name for _, name in imported_names(source)] == ["ray", "jobs.x", "jobs.x.Y"]
