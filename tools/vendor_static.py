"""Copy the chat page's front-end libraries from node_modules into helpers/static/vendor/.

``make vendor`` runs it after ``npm ci``: the versions are the ones pinned in package.json and
package-lock.json. Each library's licence goes with it, and vendor/VERSIONS.txt records what was
copied. Only what the page loads is copied (KaTeX's fonts as woff2, which every browser the page
supports reads first; scripts without their source-map comments, the maps are not shipped), so
the package stays small. The page never loads anything from a CDN.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "node_modules"
VENDOR = ROOT / "helpers" / "static" / "vendor"
SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S+\s*$")

#: library -> (files to copy as (source in the npm package, name in vendor/<library>/)),
#: licence files, and npm packages bundled inside its browser build (their licences come too).
LIBRARIES: dict[str, dict[str, list]] = {
    "markdown-it": {
        "files": [("dist/browser/markdown-it.umd.min.js", "markdown-it.min.js")],
        "licences": ["LICENSE"],
        "bundled": ["entities", "linkify-it", "mdurl", "punycode.js", "uc.micro"],
    },
    "markdown-it-texmath": {
        "files": [("texmath.js", "texmath.js")],
        "licences": ["license.txt"],
        "bundled": [],
    },
    "katex": {
        "files": [("dist/katex.min.js", "katex.min.js"), ("dist/katex.min.css", "katex.min.css"),
                  ("dist/fonts/*.woff2", "fonts/")],
        "licences": ["LICENSE"],
        "bundled": [],
    },
    "dompurify": {
        "files": [("dist/purify.min.js", "purify.min.js")],
        "licences": ["LICENSE"],
        "bundled": [],
    },
}


def version(package: str) -> str:
    """Return the installed version of an npm package."""
    return json.loads((MODULES / package / "package.json").read_text())["version"]


def licence_files(package: str) -> list[Path]:
    """Return a package's licence files (LICENSE, LICENSE.md, license.txt, ...)."""
    return sorted(p for p in (MODULES / package).iterdir()
                  if p.is_file() and p.name.lower().startswith(("license", "licence", "copying")))


def copy_library(name: str, spec: dict[str, list], vendor: Path) -> list[str]:
    """Copy one library into vendor/<name>/ and return its VERSIONS.txt lines."""
    source, target = MODULES / name, vendor / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for pattern, dest in spec["files"]:
        matches = sorted(source.glob(pattern))
        if not matches:
            raise SystemExit(f"{name}: {pattern} not found (run npm ci first)")
        for path in matches:
            out = target / dest / path.name if dest.endswith("/") else target / dest
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix == ".js":  # no source-map comment: the maps are not shipped
                text = path.read_text(encoding="utf-8")
                out.write_text(SOURCE_MAP.sub("", text), encoding="utf-8")
            else:
                shutil.copyfile(path, out)
    for licence in spec["licences"]:
        shutil.copyfile(source / licence, target / "LICENSE")
    lines = [f"{name} {version(name)}"]
    for inner in spec["bundled"]:
        for path in licence_files(inner):
            shutil.copyfile(path, target / f"LICENSE.{inner.removesuffix('.js')}")
        lines.append(f"  bundled: {inner} {version(inner)}")
    return lines


def vendor(target: Path) -> list[str]:
    """Copy every library into target (a vendor/ folder); return the VERSIONS.txt lines."""
    lines = ["# The chat page's vendored libraries (tools/vendor_static.py, `make vendor`).",
             "# Pinned in package.json / package-lock.json; each folder holds its LICENSE."]
    for name, spec in LIBRARIES.items():
        lines += copy_library(name, spec, target)
    (target / "VERSIONS.txt").write_text("\n".join(lines) + "\n")
    return lines


def differences(a: Path, b: Path) -> list[str]:
    """Return the files that differ between two folders (missing on one side, or changed)."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    changed = {f for f in files_a & files_b if (a / f).read_bytes() != (b / f).read_bytes()}
    return sorted(str(f) for f in (files_a ^ files_b) | changed)


def main(argv: list[str] | None = None) -> int:
    """Refresh helpers/static/vendor from node_modules (--check: only compare)."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    if not MODULES.is_dir():
        print("node_modules/ is missing: run `npm ci` (or `make vendor`) first", file=sys.stderr)
        return 1
    if check:
        with tempfile.TemporaryDirectory() as tmp:
            vendor(Path(tmp))
            stale = differences(Path(tmp), VENDOR)
        print("\n".join(stale) if stale else "helpers/static/vendor is up to date")
        return 1 if stale else 0
    print("\n".join(vendor(VENDOR)[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
