"""The shape of helpers/: parts a folder tree shows, no import circles, the SDK's public API only.

docs/architecture.md is the map; these are the rules it promises (DEVELOPERS.md: one idea per
module, none over about 350 lines).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"
MODULES = sorted(HELPERS.rglob("*.py"))
#: At most about 14 modules side by side in helpers/ itself: the rest live in packages.
MAX_TOP_LEVEL = 14
MAX_LINES = 360  # "about 350"
#: The SDK's private parts the relay once used; only its public surface (its README) is allowed.
PRIVATE_SDK = re.compile(r"\bopenai\._|\bfrom openai\._|\._build_request\b|\._should_retry\b"
                         r"|\._calculate_retry_timeout\b|\._make_status_error|FinalRequestOptions")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of helpers/ it imports (at import time or inside a function), and
    the ``__init__`` of every package it reaches from outside that package (from inside, the
    package is already being imported)."""
    names = {module_name(p, root): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = (package[:len(package) - node.level + 1] if node.level else [])
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # a.b.c runs a.b's __init__ first
                    reached = ".".join(parts[:i])
                    inside = name == reached or name.startswith(reached + ".")
                    if reached in names and not (inside and names[reached].name == "__init__.py"):
                        found.add(reached)
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_few_modules_directly_in_helpers() -> None:
    top = sorted(p.name for p in HELPERS.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HELPERS)))
def test_no_module_is_long(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"


def test_no_import_circles() -> None:
    assert cycles(import_graph(MODULES)) == []


def test_the_circle_finder_finds_a_circle(tmp_path: Path) -> None:
    """The check above can fail: a module importing another that imports it back inside a
    function is a circle; one that only imports is not; nor is a sibling through the package."""
    package = tmp_path / "helpers"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import x\n")
    (package / "b.py").write_text("def x():\n    from . import a\n")
    (package / "c.py").write_text("from .a import y\nfrom .sub.d import z\n")
    (package / "sub" / "__init__.py").write_text("from .d import z\n")
    (package / "sub" / "d.py").write_text("from . import e\n")
    (package / "sub" / "e.py").write_text("")
    graph = import_graph(sorted(package.rglob("*.py")), tmp_path)
    assert graph["helpers.c"] == {"helpers.a", "helpers.sub", "helpers.sub.d"}
    assert cycles(graph) == [["helpers.a", "helpers.b"]]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HELPERS)))
def test_only_the_sdks_public_api(path: Path) -> None:
    used = [line.strip() for line in path.read_text().splitlines() if PRIVATE_SDK.search(line)]
    assert used == [], f"{path.relative_to(ROOT)} reaches into the SDK's private parts: {used}"


def test_the_sdk_is_capped_below_its_next_major_version() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (sdk,) = [d for d in deps if re.match(r"openai\b", d)]
    lower = re.search(r">=\s*(\d+)\.", sdk)
    upper = re.search(r"<\s*(\d+)(?:\.0)*(?:,|$|\s)", sdk)
    assert lower and upper and int(upper.group(1)) == int(lower.group(1)) + 1, sdk
