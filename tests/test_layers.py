"""The layering rules of docs/architecture.md, checked on the source: `training` and `predict` never
import each other, `inference` imports neither, `models` (the networks and the losses, with each loss's
logits → probabilities map that training and inference share) imports none of them, the core never
imports the CLI, `config` imports only the top-level helpers, no two modules import each other
(directly or round a circle), and no function grows past 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tracknet_cli"

FORBIDDEN = {
    "training": ("tracknet_cli.predict", "tracknet_cli.cli"),
    "predict": ("tracknet_cli.training", "tracknet_cli.cli"),
    "inference": ("tracknet_cli.training", "tracknet_cli.predict", "tracknet_cli.cli"),
    "data": ("tracknet_cli.training", "tracknet_cli.predict", "tracknet_cli.inference", "tracknet_cli.cli"),
    "models": ("tracknet_cli.training", "tracknet_cli.predict", "tracknet_cli.inference", "tracknet_cli.cli"),
    "label": ("tracknet_cli.training", "tracknet_cli.cli"),
    "pretrained": ("tracknet_cli.training", "tracknet_cli.predict", "tracknet_cli.label", "tracknet_cli.cli"),
    "config": tuple(
        f"tracknet_cli.{p}"
        for p in ("data", "models", "training", "predict", "inference", "label", "media", "pretrained", "cli")
    ),
    "media": (
        "tracknet_cli.data",
        "tracknet_cli.models",
        "tracknet_cli.training",
        "tracknet_cli.predict",
        "tracknet_cli.inference",
        "tracknet_cli.cli",
    ),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an `import` or `from ... import` names, lazily inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_to_its_layer(package: str) -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line} imports {module}"
        for path in sorted((SRC / package).rglob("*.py"))
        for line, module in imported_modules(path)
        if module.startswith(FORBIDDEN[package])
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from tracknet_cli.training.loop import fit\n    import tracknet_cli.predict\n")
    assert imported_modules(sample) == [(2, "tracknet_cli.training.loop"), (3, "tracknet_cli.predict")]


def module_graph(src: Path = SRC) -> dict[str, set[str]]:
    """The tracknet_cli modules each module imports: at module level, inside functions and under
    `if TYPE_CHECKING:` alike (a type one module takes from another is a dependency all the same);
    `from package import submodule` imports the submodule. The source uses absolute imports only."""
    modules = {}
    for path in src.rglob("*.py"):
        parts = (src.name, *path.relative_to(src).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def owner(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}:{node.lineno}: a relative import; write it absolute"
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                targets += [m for m in submodules if m in modules] or [node.module]
        graph[name] = {owner(t) for t in targets if t.split(".")[0] == src.name} - {name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that reach one another through imports (Tarjan's strongly connected
    components, iteratively), as a sorted list; groups of one module are no circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(group) > 1:
                        circles.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in stack:
                low[node] = min(low[node], index[child])
    return circles


def test_no_module_imports_round_a_circle() -> None:
    circles = import_circles(module_graph())
    assert not circles, "\n".join(" <-> ".join(group) for group in circles)


def test_the_circle_finder_sees_a_circle_through_a_lazy_and_a_type_only_import(tmp_path: Path) -> None:
    pkg = tmp_path / "tracknet_cli"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tracknet_cli.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    import tracknet_cli.c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tracknet_cli.a import X\n")
    (pkg / "d.py").write_text("from tracknet_cli import a\n")
    graph = module_graph(pkg)
    assert graph["tracknet_cli.a"] == {"tracknet_cli.sub.b"} and graph["tracknet_cli.d"] == {"tracknet_cli.a"}
    assert import_circles(graph) == [["tracknet_cli.a", "tracknet_cli.c", "tracknet_cli.sub.b"]]


def test_no_function_is_longer_than_60_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, "\n".join(long)
