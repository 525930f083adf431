"""docs/architecture.md's trace of the page's route names only what the code defines.

The section "The page's route, traced" names each step as `path:name` (a Python module-level
function, class or assignment, or `Class.method`; a JavaScript function, `var`/`let`/`const`, an
object's property or method, or a property assignment, `Outer.inner` for one inside another).
Each reference is checked against its file: a rename or a move in the code fails here until
the doc follows. The checker is tested on made-up names, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
TRACE = "## The page's route, traced"

#: `helpers/relay/resume.py:Answers.respond`, `helpers/static/resume.js:ChatResume.read`
REFERENCE = re.compile(r"`((?:helpers|tests|benchmarks|solutions|tools)/[\w./-]+\.(?:py|js))"
                       r":([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)`")


def section(doc: str, heading: str) -> str:
    """Return the text under ``heading`` up to the next heading of the same level or higher."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = doc.splitlines()
    start = lines.index(heading)  # a renamed heading fails here, not silently
    out = []
    for line in lines[start + 1:]:
        hashes = len(line) - len(line.lstrip("#"))
        if 0 < hashes <= level and line[hashes:hashes + 1] == " ":
            break
        out.append(line)
    return "\n".join(out)


def references(text: str) -> list[tuple[str, str]]:
    """Return every `path:name` reference in ``text``, in order, without repeats."""
    return list(dict.fromkeys(REFERENCE.findall(text)))


def _python_defines(source: str, name: str) -> bool:
    scope: list[ast.stmt] = ast.parse(source).body
    parts = name.split(".")
    for i, part in enumerate(parts):
        found: ast.stmt | None = None
        for node in scope:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                hit = node.name == part
            elif isinstance(node, ast.Assign):
                hit = any(isinstance(t, ast.Name) and t.id == part for t in node.targets)
            elif isinstance(node, ast.AnnAssign):
                hit = isinstance(node.target, ast.Name) and node.target.id == part
            else:
                hit = False  # an import is not a definition
            if hit:
                found = node
        if found is None:
            return False
        if i < len(parts) - 1:
            if not isinstance(found, ast.ClassDef):
                return False
            scope = found.body
    return True


def _javascript_defines(source: str, name: str) -> bool:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)  # a name in a comment is no
    source = re.sub(r"^\s*//.*$", "", source, flags=re.MULTILINE)  # definition
    for part in name.split("."):
        n = re.escape(part)
        forms = (
            rf"\bfunction\s*\*?\s*{n}\s*\(",  # a declaration, or a named function expression
            rf"\b(?:const|let|var)\s+{n}\s*=",  # const name = ...
            rf"(?:^|[{{,\s]){n}\s*:\s*(?:async\s+)?function\b",  # name: function (...) {
            rf"(?:^|[{{,\s]){n}\s*:\s*(?:async\s*)?\([^)]*\)\s*=>",  # name: (...) => ...
            rf"\.{n}\s*=(?![=>])",  # obj.name = ...
            rf"^\s*(?:static\s+|async\s+)*{n}\s*\([^)]*\)\s*\{{",  # a method: name(...) {
        )
        if not any(re.search(form, source, re.MULTILINE) for form in forms):
            return False
    return True


def defined(path: str, name: str, root: Path = ROOT) -> bool:
    """Return whether ``name`` is defined in the file ``path`` (relative to ``root``)."""
    file = root / path
    if not file.is_file():
        return False
    source = file.read_text(encoding="utf-8")
    if file.suffix == ".py":
        return _python_defines(source, name)
    return _javascript_defines(source, name)


def undefined(text: str, root: Path = ROOT) -> list[str]:
    """Return the references in ``text`` whose file or name does not exist."""
    return [f"{path}:{name}" for path, name in references(text) if not defined(path, name, root)]


def test_the_trace_names_every_step_of_the_route():
    """The trace is a trace: Python and JavaScript, every file the route passes through."""
    found = references(section(DOC.read_text(encoding="utf-8"), TRACE))
    files = {path for path, _ in found}
    route = {
        "helpers/static/chat.js", "helpers/static/access.js", "helpers/static/resume.js",
        "helpers/static/sse.js", "helpers/static/render.js",
        "helpers/bounded_http.py", "helpers/relay/guards.py", "helpers/relay/access.py",
        "helpers/relay/identity.py", "helpers/relay/bodies.py", "helpers/relay/app.py",
        "helpers/relay/limits.py", "helpers/relay/upstream.py", "helpers/streams/sse.py",
        "helpers/relay/chunkreader.py", "helpers/relay/resume.py",
        "helpers/relay/store/base.py", "helpers/relay/eventstream.py", "helpers/errors.py",
    }
    assert route - files == set()
    assert len(found) >= 60


def test_every_name_in_the_trace_is_defined_where_it_says():
    """Each `path:name` of the trace exists: the file, and the name defined in it."""
    assert undefined(section(DOC.read_text(encoding="utf-8"), TRACE)) == []


def test_the_check_reports_made_up_and_merely_used_names(tmp_path):
    """Self-test: a made-up name, a gone file, and a name a file only imports or calls are
    reported; real definitions of every form are not; nothing outside the section counts."""
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "m.py").write_text(
        "from os import path\n"
        "LIMIT: int = 3\n"
        "Batch = list\n"
        "class Answers:\n"
        "    async def respond(self):\n"
        "        def inner(): pass\n"
        "        path.join('a')\n"
        "async def produce(): pass\n")
    (tmp_path / "helpers" / "p.js").write_text(
        "/* function commented(x) { } */\n"
        "var Chat = (function () {\n"
        "  const MAX = 3;\n"
        "  function read(response) { return fetch('x'); }\n"
        "  async function stop() { read(1); }\n"
        "  class View {\n"
        "    redraw() { }\n"
        "  }\n"
        "  window.page = {};\n"
        "  window.page.turns = function () {};\n"
        "  return { read: read, headers: function (h) { return h; }, go: (a) => a };\n"
        "})();\n")
    real = ["helpers/m.py:LIMIT", "helpers/m.py:Batch", "helpers/m.py:Answers",
            "helpers/m.py:Answers.respond", "helpers/m.py:produce",
            "helpers/p.js:Chat", "helpers/p.js:Chat.read", "helpers/p.js:MAX",
            "helpers/p.js:stop", "helpers/p.js:redraw", "helpers/p.js:turns",
            "helpers/p.js:Chat.headers", "helpers/p.js:go"]
    made_up = ["helpers/m.py:Answers.no_such_method",  # the brief's made-up name
               "helpers/m.py:NoSuchClass",
               "helpers/m.py:path",  # imported, not defined
               "helpers/m.py:Answers.respond.inner",  # a local function: no one can rely on it
               "helpers/m.py:produce.respond",  # a function has no methods
               "helpers/gone.py:anything",
               "helpers/p.js:noSuchFunction",
               "helpers/p.js:fetch",  # called, not defined
               "helpers/p.js:commented",  # only in a comment
               "helpers/p.js:Chat.nothing"]
    doc = "\n".join([
        "# Doc", "## Before", "`helpers/m.py:not_in_the_section`",
        TRACE, *(f"- `{ref}`" for ref in real + made_up),
        "### A subsection still counts", "`helpers/p.js:alsoMadeUp`",
        "## After", "`helpers/p.js:notInTheSectionEither`"])
    assert undefined(section(doc, TRACE), tmp_path) == made_up + ["helpers/p.js:alsoMadeUp"]


def test_the_real_route_has_what_the_self_test_pretends():
    """The self-test's forms are the real files' forms: one real reference of each kind."""
    assert defined("helpers/relay/resume.py", "Answers.respond")
    assert defined("helpers/relay/chunkreader.py", "Batch")  # an assignment
    assert not defined("helpers/relay/app.py", "upstream_batches")  # imported there
    assert defined("helpers/static/resume.js", "ChatResume.untilAborted")
    assert defined("helpers/static/access.js", "RelayAccess.headers")  # a property
    assert not defined("helpers/static/chat.js", "fetch")  # called there
    assert not defined("helpers/relay/resume.py", "Answers.no_such_method")
