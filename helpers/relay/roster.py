"""The class's tokens file: one ``name token`` per line, read at start, re-read when it changes.

Deliberate choices (the teacher's side is docs/classroom.md, "Per-student tokens"):

- **One line per student**, ``name token``, blank lines and ``#`` comments allowed (a ``#``
  starts a comment anywhere: a name or a token never holds one). A name is letters, digits,
  ``.``, ``_`` or ``-`` (Unicode letters too: ``张伟``), at most 64; a token is at least
  :data:`MIN_TOKEN` characters of ``A-Z a-z 0-9 . _ ~ -`` (what :func:`~.access.new_token`
  makes, and what a link's ``#token=`` carries unescaped). ``python -m helpers.relay.tokens
  make`` writes such a file.
- **A bad line is a start-up error that names its line number** (:class:`RosterError`), and
  nothing else of it: a message never shows a token, nor a name (a line written the wrong way
  round would show its token as the name).
- **The teacher is a line too**: the one named :data:`TEACHER` (``teacher``), or the name
  given with ``--teacher NAME``. Only that token may read the usage view (:mod:`.usage`).
- **Edited while the relay runs, it is re-read without a restart**, so deleting a leaked
  token's line revokes it within about a second. :meth:`RosterFile.current` looks at the file
  at most once every :data:`CHECK_EVERY` s, in a worker thread (a ``stat``, and a read only when
  its size, time or inode changed): the event loop never waits on the disk, and a request that
  comes while a look is running uses the roster it has. A file that became unreadable, too big
  (:data:`MAX_BYTES`) or invalid keeps the last good roster, and the log says why, once per
  change, by line number only. Each worker process of a ``--workers N`` relay re-reads it
  itself.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.to_thread

__all__ = ["CHECK_EVERY", "MAX_BYTES", "MIN_TOKEN", "TEACHER", "RosterError", "RosterFile",
           "parse_names", "parse_roster", "read_roster"]

log = logging.getLogger("helpers.relay")

#: The name of the teacher's line when no ``--teacher NAME`` says otherwise.
TEACHER = "teacher"
#: A token shorter than this is refused: a guessable token is no token.
MIN_TOKEN = 16
#: A tokens file larger than this is not read (a class is a few kB).
MAX_BYTES = 1_000_000
#: Seconds between two looks at the file.
CHECK_EVERY = 1.0
#: Seconds a request waits for a look at the file before it goes on with the roster it has.
LOOK_PATIENCE = 5.0
_NAME = re.compile(r"[^\W_][\w.-]{0,63}")
_TOKEN = re.compile(rf"[A-Za-z0-9._~-]{{{MIN_TOKEN},512}}")


class RosterError(ValueError):
    """A tokens file the relay cannot use; the message names the line, never its contents."""


def _fields(text: str) -> list[tuple[int, list[str]]]:
    """The lines that are not blank or comments: (line number, fields)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if fields:
            out.append((number, fields))
    return out


def parse_names(text: str, where: str = "the names file") -> list[str]:
    """Return the names of a names file: one per line, blank lines and ``#`` comments allowed."""
    names: dict[str, int] = {}
    for number, fields in _fields(text):
        name = " ".join(fields)
        if len(fields) != 1 or not _NAME.fullmatch(name):
            raise RosterError(f"{where}, line {number}: a name is one word of letters, digits, "
                              "'.', '_' or '-' (at most 64)")
        if name in names:
            raise RosterError(f"{where}, line {number}: the same name as line {names[name]}")
        names[name] = number
    if not names:
        raise RosterError(f"{where} has no names")
    return list(names)


def parse_roster(text: str, where: str = "the tokens file") -> dict[str, str]:
    """Return ``{name: token}`` from a tokens file's text, or raise :class:`RosterError`."""
    roster: dict[str, str] = {}
    lines: dict[str, dict[str, int]] = {"name": {}, "token": {}}  # -> its line
    for number, fields in _fields(text):
        if len(fields) != 2:
            raise RosterError(f"{where}, line {number}: expected 'name token' (2 fields, "
                              f"found {len(fields)})")
        name, token = fields
        if not _NAME.fullmatch(name):
            raise RosterError(f"{where}, line {number}: a name is letters, digits, '.', '_' "
                              "or '-' (at most 64), first 'name', then 'token'")
        if not _TOKEN.fullmatch(token):
            raise RosterError(f"{where}, line {number}: a token is {MIN_TOKEN} to 512 of "
                              "A-Z a-z 0-9 . _ ~ - (python -m helpers.relay.tokens make "
                              "writes good ones)")
        for what, key in (("name", name), ("token", token)):
            if key in lines[what]:
                raise RosterError(f"{where}, line {number}: the same {what} as line "
                                  f"{lines[what][key]}")
            lines[what][key] = number
        roster[name] = token
    if not roster:
        raise RosterError(f"{where} has no 'name token' lines")
    return roster


def read_roster(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read and parse a tokens file (bounded by :data:`MAX_BYTES`), or raise."""
    path = Path(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise RosterError(f"{path} is over {MAX_BYTES:,} bytes: not a tokens file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RosterError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return parse_roster(text, where=str(path))


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class RosterFile:
    """A tokens file, kept current: :meth:`current` is its last good ``{name: token}``.

    Args:
        path: the file; read once here (a bad file raises :class:`RosterError` or
            ``OSError``: the relay does not start).
        teacher: the name of the teacher's line.
    """

    def __init__(self, path: str | os.PathLike[str], teacher: str = TEACHER) -> None:
        self.path, self.teacher = Path(path), teacher
        self._seen = _signature(self.path)
        self.tokens: Mapping[str, str] = read_roster(self.path)
        self._checked = time.monotonic()
        self._looking = threading.Lock()  # one look at a time, whichever thread

    def __repr__(self) -> str:  # never the tokens
        return f"<RosterFile {self.path} names={len(self.tokens)} teacher={self.teacher!r}>"

    def __getstate__(self) -> dict:  # a worker re-reads the file itself (workers.py)
        raise TypeError("pass a worker the tokens file's path, not a RosterFile")

    def describe(self, url: str) -> str:
        """What the relay says about its roster when it starts (never a token)."""
        teacher = (f"the teacher's line {self.teacher!r} opens the usage view, {url}usage"
                   if self.teacher in self.tokens else
                   f"no line named {self.teacher!r}: nobody may read the usage view")
        return (f"per-student tokens from {self.path}: {len(self.tokens)} names; {teacher}. "
                "Each student opens their own link (python -m helpers.relay.tokens handout).")

    async def current(self) -> Mapping[str, str]:
        """The roster, after a look at the file if the last one is :data:`CHECK_EVERY` s old."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY and not self._looking.locked():
            self._checked = now
            with anyio.move_on_after(LOOK_PATIENCE):  # a hung disk: go on with what we have
                await anyio.to_thread.run_sync(self.look, abandon_on_cancel=True)
        return self.tokens

    def look(self) -> bool:
        """Re-read the file if it changed (blocking: a worker thread calls it); True if the
        roster changed. Failures keep the last good roster and are logged once per change."""
        if not self._looking.acquire(blocking=False):
            return False
        try:
            try:
                seen = _signature(self.path)
            except OSError as exc:
                return self._keep(("gone", exc.errno), f"cannot see it ({exc.strerror})")
            if seen == self._seen:
                return False
            try:
                tokens = read_roster(self.path)
            except RosterError as exc:
                return self._keep(seen, str(exc))
            except OSError as exc:
                return self._keep(seen, f"cannot read it ({exc.strerror})")
            self._seen = seen
            changed = tokens != self.tokens
            if changed:
                gone, new = len(set(self.tokens) - set(tokens)), len(set(tokens) - set(self.tokens))
                log.warning("tokens file %s re-read: %d names (%d new, %d removed)",
                            self.path, len(tokens), new, gone)
            self.tokens = tokens
            return changed
        finally:
            self._looking.release()

    def _keep(self, seen: object, why: str) -> bool:
        if seen != self._seen:  # said once per change, not every second
            self._seen = seen  # type: ignore[assignment]
            log.warning("tokens file %s not used, the last good roster (%d names) stays: %s",
                        self.path, len(self.tokens), why)
        return False
