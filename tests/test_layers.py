"""The layering rules of docs/architecture.md, checked on the source: `training` and `predict` never
import each other, `inference` imports neither, the core never imports the CLI, and no function
grows past 100 lines."""

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


def test_no_function_is_longer_than_100_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 100
    ]
    assert not long, "\n".join(long)
