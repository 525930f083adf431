"""``python -m helpers.relay.tokens``: a class's tokens file, and its printable handout.

::

    python -m helpers.relay.tokens make --students 30 --out class-tokens.txt
    python -m helpers.relay.tokens make --names names.txt --out class-tokens.txt
    python -m helpers.relay.tokens handout class-tokens.txt --url http://10.0.0.5:4020/ \\
        --out handout.html
    python -m helpers.relay.tokens revoke class-tokens.txt ben      # then: add ... ben

Deliberate choices (the teacher's side is docs/classroom.md, "Per-student tokens"):

- **The file is** :mod:`helpers.relay.roster`'s: ``name token`` lines, the teacher's line
  (named ``teacher``, or ``--teacher NAME``) added to every file it makes; tokens are
  :func:`~helpers.relay.access.new_token`'s (32 random bytes).
- **Files that hold tokens are written with mode 0600** (only their owner reads them), in one
  step (a temporary file renamed over the old one), so a relay that re-reads the file never
  sees half of it. ``make`` does not overwrite a file (handed-out links would stop working)
  unless told ``--force``.
- **Tokens reach stdout only when asked** (``make --show``); the command says what it wrote,
  with names and counts only.
- **The handout** is one self-contained HTML page (no script, no network: the QR codes are
  inline SVG made by ``segno``), one card per student with their link
  ``<url>#token=...`` and its QR code, and the teacher's card with the usage view's link.
  Print it, cut the cards, then delete the file.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .access import new_token
from .roster import TEACHER, RosterError, parse_names, parse_roster, read_roster

__all__ = ["QR_SCALE", "handout_html", "main", "make_roster", "roster_text", "write_private"]

#: Pixels per QR module on the handout (about 4 cm for a link: a phone reads it from paper).
QR_SCALE = 4

_HEADER = ("# Per-student tokens for python -m helpers.relay --tokens FILE: one 'name token' a "
           "line.\n# Delete a line to revoke its token (the relay re-reads this file). Keep it "
           "private.\n")
_CARD_CSS = """
body { font-family: system-ui, "Noto Sans", "WenQuanYi Micro Hei", sans-serif; margin: 1cm; }
h1 { font-size: 14pt; } .cards { display: grid; grid-template-columns: 1fr 1fr; gap: .6cm; }
.card { border: 1px dashed #555; padding: .4cm; break-inside: avoid; page-break-inside: avoid; }
.card h2 { font-size: 16pt; margin: 0 0 .2cm; } .card svg { display: block; margin: .2cm 0; }
.link { font-family: ui-monospace, monospace; font-size: 8pt; overflow-wrap: anywhere; }
.teacher { border-style: solid; border-width: 2px; } .note { font-size: 9pt; color: #333; }
"""


def make_roster(names: list[str], teacher: str = TEACHER) -> dict[str, str]:
    """``{name: new token}`` for ``names``, the teacher's line first."""
    return {name: new_token() for name in [teacher, *(n for n in names if n != teacher)]}


def roster_text(roster: dict[str, str]) -> str:
    """A tokens file's text: a header comment, then one aligned ``name token`` line each."""
    width = max(len(name) for name in roster)
    return _HEADER + "".join(f"{name:<{width}}  {token}\n" for name, token in roster.items())


def write_private(path: Path, text: str, *, replace: bool = True) -> None:
    """Write ``text`` to ``path`` with mode 0600, in one step (a renamed temporary file)."""
    if not replace and path.exists():
        raise FileExistsError(f"{path} exists: the links handed out for it would stop working "
                              "(--force replaces it)")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _base_url(url: str) -> str:
    """The relay's address as students reach it, ending in ``/``; or ValueError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise ValueError(f"--url is the relay's address as students open it, like "
                         f"http://10.0.0.5:4020/, not {url!r}")
    try:
        unspecified = ipaddress.ip_address(parts.hostname).is_unspecified
    except ValueError:
        unspecified = False
    if unspecified:
        raise ValueError(f"{parts.hostname} is where a relay listens, not an address to open: "
                         "give the machine's address in the room (ip addr, ipconfig)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


def _qr_svg(link: str) -> str:
    import segno  # the handout's one third-party part

    return segno.make(link, error="m").svg_inline(scale=QR_SCALE, title="QR code of the link")


def handout_html(roster: dict[str, str], url: str, teacher: str = TEACHER) -> str:
    """The printable handout: one card per student (link and QR code), the teacher's first."""
    base = _base_url(url)
    cards = []
    for name, token in roster.items():
        link = f"{base}#token={token}"
        if name == teacher:
            usage = f"{base}usage#token={token}"
            cards.insert(0, (
                f'<section class="card teacher"><h2>{html.escape(name)} (the teacher)</h2>'
                f"{_qr_svg(usage)}<p>The usage view: who asked what today.</p>"
                f'<p class="link">{html.escape(usage)}</p><p>Your own chat page:</p>'
                f'<p class="link">{html.escape(link)}</p><p class="note">Keep this card: '
                "its link alone opens the usage view.</p></section>"))
            continue
        cards.append(
            f'<section class="card"><h2>{html.escape(name)}</h2>{_qr_svg(link)}'
            f'<p class="link">{html.escape(link)}</p><p class="note">Open the link or scan the '
            "code. It is yours alone: it lets you ask the class's assistant, and what you ask "
            "counts as yours.</p></section>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\"><title>Class links</title>"
            f"<style>{_CARD_CSS}</style></head><body><h1>Class links for {html.escape(base)}"
            "</h1><div class=\"cards\">" + "".join(cards) + "</div></body></html>\n")


def _make(args: argparse.Namespace) -> str:
    if args.names is not None:
        names = parse_names(Path(args.names).read_text(encoding="utf-8"), where=args.names)
    else:
        if args.students < 1:
            raise ValueError("--students is 1 or more")
        width = len(str(args.students))
        names = [f"student{i:0{width}d}" for i in range(1, args.students + 1)]
    roster = make_roster(names, args.teacher)
    text = roster_text(roster)
    parse_roster(text)  # what the relay will read
    out = Path(args.out)
    write_private(out, text, replace=args.force)
    said = (f"wrote {out}: {len(roster) - 1} students and the teacher ({args.teacher}); mode "
            "0600, it holds their tokens")
    if args.handout:
        write_private(Path(args.handout), handout_html(roster, args.url, args.teacher))
        said += f"\nwrote {args.handout}: one card each (mode 0600: it holds the same tokens)"
    return said + ("\n" + text if args.show else "")


def _handout(args: argparse.Namespace) -> str:
    roster = read_roster(args.tokens)
    if args.only:
        missing = [n for n in args.only if n not in roster]
        if missing:
            raise ValueError(f"not in {args.tokens}: {', '.join(missing)}")
        roster = {name: token for name, token in roster.items() if name in args.only}
    write_private(Path(args.out), handout_html(roster, args.url, args.teacher))
    return (f"wrote {args.out}: {len(roster)} cards (mode 0600: it holds the tokens; print it, "
            "then delete it)")


def _edit(args: argparse.Namespace) -> str:
    path = Path(args.tokens)
    roster = read_roster(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if args.command == "revoke":
        unknown = [n for n in args.names if n not in roster]
        if unknown:
            raise ValueError(f"not in {path}: {', '.join(unknown)}")
        kept = [line for line in lines
                if (line.split("#", 1)[0].split() or [""])[0] not in args.names]
        write_private(path, "".join(kept))
        return f"revoked {', '.join(args.names)} in {path}: a relay using it refuses them now"
    names = parse_names("\n".join(args.names), where="the names given")
    taken = [n for n in names if n in roster]
    if taken:
        raise ValueError(f"already in {path}: {', '.join(taken)} (revoke first to renew)")
    added = {name: new_token() for name in names}
    text = "".join(lines) + ("" if not lines or lines[-1].endswith("\n") else "\n")
    text += "".join(f"{name}  {token}\n" for name, token in added.items())
    parse_roster(text)
    write_private(path, text)
    return f"added {', '.join(names)} to {path} (handout --only prints their cards)"


def main(argv: list[str] | None = None) -> int:
    """Make, print or edit a class's tokens file; 0 on success, 2 on a clear error."""
    parser = argparse.ArgumentParser(prog="python -m helpers.relay.tokens",
                                     description="Per-student tokens for the relay's --tokens.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="a new tokens file for a class")
    who = make.add_mutually_exclusive_group(required=True)
    who.add_argument("--students", type=int, metavar="N", help="student01 ... studentN")
    who.add_argument("--names", metavar="FILE", help="one name a line")
    make.add_argument("--out", required=True, metavar="FILE")
    make.add_argument("--force", action="store_true", help="replace an existing file")
    make.add_argument("--show", action="store_true", help="also print the file (its tokens)")
    make.add_argument("--handout", metavar="FILE", help="also write the handout (needs --url)")
    make.add_argument("--url", metavar="URL", help="the relay as students open it")
    hand = commands.add_parser("handout", help="a printable page: one card per student")
    hand.add_argument("tokens", metavar="TOKENS_FILE")
    hand.add_argument("--url", required=True, metavar="URL",
                      help="the relay as students open it, e.g. http://10.0.0.5:4020/")
    hand.add_argument("--out", required=True, metavar="FILE")
    hand.add_argument("--only", action="append", metavar="NAME",
                      help="only this student's card (repeat for more)")
    for name, say in (("revoke", "remove students' lines"), ("add", "add students")):
        edit = commands.add_parser(name, help=say)
        edit.add_argument("tokens", metavar="TOKENS_FILE")
        edit.add_argument("names", nargs="+", metavar="NAME")
    for sub in (make, hand):
        sub.add_argument("--teacher", default=TEACHER, metavar="NAME",
                         help=f"the teacher's line (default: {TEACHER})")
    args = parser.parse_args(argv)
    if args.command == "make" and bool(args.handout) != bool(args.url):
        parser.error("--handout and --url go together")
    try:
        run = {"make": _make, "handout": _handout}.get(args.command, _edit)
        print(run(args), flush=True)
    except (OSError, RosterError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
