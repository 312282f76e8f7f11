"""The import layers of README's Layout hold, and no module imports itself back through others.

Read from the source with ast (every import, function-level ones too: a lazy import is still an
arrow), the stage folders mapped to their armada.* packages as pyproject.toml maps them. A module may
import its own room and any room on a lower floor; an arrow back up, or a circle between modules,
fails with the import's file and line.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# README's Layout, top floor first; rooms on one floor may not import each other.
FLOORS = (
    ("armada.cli", "armada.commands"),
    ("armada.pipeline",),
    ("armada.preflight",),
    ("armada.extract", "armada.reporting"),
    ("armada.eval",),
    ("armada.distill",),
    ("armada.run_schema",),
    ("armada.cache_schema", "armada.config"),
    ("armada.objectives",),
    ("armada.tasks",),
    ("armada.files", "armada.fields", "armada.checksums", "armada.jsonl", "armada.numbers", "armada.provenance"),
    ("armada.errors", "armada"),
)
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def _modules() -> dict[str, Path]:
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = {}
    for package, folder in package_dirs.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _arrows(modules: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(importer, imported module, "file:line") for every import of an armada module."""
    arrows = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base] * bool(base))
                # `from package import module` depends on that module, `from module import name` on the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    arrows.append((name, target, f"{path.relative_to(path.parent.parent)}:{node.lineno}"))
    return arrows


def _room(module: str) -> str | None:
    """The room a module is in; None for one on no floor ("armada" is the package's own __init__ alone)."""
    parts = module.split(".")
    rooms = [".".join(parts[:n]) for n in range(len(parts), 1, -1) if ".".join(parts[:n]) in FLOOR]
    return rooms[0] if rooms else ("armada" if module == "armada" else None)


MODULES = _modules()
ARROWS = _arrows(MODULES)


def test_every_module_has_a_floor():
    assert {"armada.distill.recipe", "armada.cache_schema.sequences", "armada.commands.extract"} <= set(MODULES)
    unplaced = sorted(m for m in MODULES if _room(m) is None)
    assert not unplaced, f"modules on no floor: {unplaced}; place each in FLOORS, where README's Layout puts it"


def test_no_arrow_runs_up_or_sideways():
    wrong = [f"{where}: {a} imports {b} ({_room(a)} may not import {_room(b)})" for a, b, where in ARROWS
             if None not in (_room(a), _room(b)) and _room(a) != _room(b) and FLOOR[_room(b)] <= FLOOR[_room(a)]]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for a, b, _ in ARROWS:
        graph[a].add(b)
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not circles, f"import cycles: {circles}"


def test_the_check_sees_an_arrow_up(tmp_path):
    """The reader finds a function-level import, the kind that made distill/ read extract/ before."""
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from armada.extract.teacher import row_seed\n")
    arrows = _arrows({"armada.distill.x": module, "armada.extract.teacher": ROOT / "extract" / "teacher.py"})
    assert [(a, b) for a, b, _ in arrows] == [("armada.distill.x", "armada.extract.teacher")]
