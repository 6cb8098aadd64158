"""The package's shape (issue 13, acceptance 5): no two modules of intake/ import each other,
directly or round a longer circle (imports inside functions count too: they only postpone the
circle), and the dashboard's create_app is a short assembly of blueprints, its routes in them."""

from __future__ import annotations

import ast
from pathlib import Path

from flask import Flask

PACKAGE = Path(__file__).resolve().parent.parent / "intake"

# create_app builds the desk's state and registers blueprints; a route written inside it again
# (as the 495-line create_app had about 25) would make it grow past this.
CREATE_APP_MOST_LINES = 30
BLUEPRINTS = {"signin", "submissions", "outbox", "downloads"}


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name (a package by its own name)."""
    found = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (1 if path.name == "__init__.py" else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def circles(root: Path) -> list[list[str]]:
    """Each group of modules that reach one another through imports (Tarjan's components)."""
    found = modules(root)
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                out.append(sorted([v, *group]))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return out


def test_the_scan_finds_a_planted_circle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def later():\n    from ..c import thing\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from . import a\n")
    assert circles(package) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_module_of_intake_imports_one_that_imports_it_back() -> None:
    assert len(modules(PACKAGE)) > 50
    assert circles(PACKAGE) == []


def test_create_app_is_a_short_assembly_of_the_blueprints() -> None:
    from intake.web import app

    source = Path(app.__file__).read_text(encoding="utf-8")
    [function] = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "create_app"
    ]
    lines = (function.end_lineno or function.lineno) - function.lineno + 1
    assert lines <= CREATE_APP_MOST_LINES, f"create_app is {lines} lines"
    nested = [n.name for n in ast.walk(function) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert nested == ["create_app"], f"functions defined inside create_app: {nested[1:]}"
    calls = {ast.unparse(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)}
    assert not {c for c in calls if c.endswith((".route", ".get", ".post", ".add_url_rule"))}, calls

    # What it assembles: every route comes from one of the four blueprints.
    flask_app = _assembled()
    assert set(flask_app.blueprints) == BLUEPRINTS
    endpoints = {rule.endpoint for rule in flask_app.url_map.iter_rules()} - {"static"}
    assert len(endpoints) >= 15
    assert {e.split(".", 1)[0] for e in endpoints} == BLUEPRINTS, sorted(endpoints)


def _assembled() -> Flask:
    from intake.config import load_settings
    from intake.web.app import create_app

    # No database is reached until a request comes; SQLite in memory keeps it so.
    settings = load_settings(env={"INTAKE_DATABASE_URL": "sqlite://"}, needs=frozenset())
    return create_app(settings)
