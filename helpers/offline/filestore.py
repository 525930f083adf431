"""The offline provider's Files API, the Moonshot way: storage on disk and text extraction.

Shapes follow Moonshot's docs (platform.moonshot.cn/docs/api/files and platform.kimi.ai/docs/api/
files-*, read 2026-11-28): ``POST /v1/files`` (multipart ``file`` + ``purpose``) answers a file
object ``{id, object: "file", bytes, created_at, filename, purpose, status: "ok",
status_details: ""}``; ``GET /v1/files`` answers ``{"object": "list", "data": [...]}``;
``GET /v1/files/{id}/content`` answers the extracted text as plain text; ``DELETE`` answers
``{id, object: "file", deleted: true}``. Moonshot's limits are 1,000 files, 100 MB each and 10 GB
in total per user; here they are :class:`FileLimits`, configurable so tests reach them.

Deliberate choices:

* Purposes: Moonshot lists ``file-extract``, ``image``, ``video`` (and ``batch`` in its OpenAPI
  file). Offline only ``file-extract`` is served; the others get a 400 that says so.
* Extraction is :mod:`helpers.offline.extract`'s, bounded (a small file can be a bomb).
* Multipart is parsed by python-multipart (Starlette's parser): one level, at most
  :data:`MAX_PARTS` parts, headers bounded by the parser (8 a part, 4 KiB each). The standard
  library's ``email`` parser, used before, took 6.9 s on 1 MB of empty parts and recursed into
  nested multiparts (a RecursionError at 2,000 levels: a 500); python-multipart refuses the
  first in under a millisecond and treats a nested multipart as the bytes of its part. An 8 MB
  PDF upload: 6 ms instead of 365 ms. Both callers parse in a worker thread.
* Storage: ``<id>.json`` holds metadata and extracted text, written atomically (temporary file,
  then ``os.replace``) after extraction succeeded, so a refused upload leaves nothing behind and
  ``files.list()`` survives a restart. The original bytes are not kept: only the text is served.
  The error *messages* for the limits are ours (Moonshot does not publish its wording); the
  status (400, 404) and ``invalid_request_error`` type are Moonshot's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import BadRequest
from .extract import TEXT_SUFFIXES, extract_text

__all__ = ["KNOWN_PURPOSES", "MAX_PARTS", "TEXT_SUFFIXES", "FileLimits", "FileStore",
           "NotMultipart", "parse_upload"]

#: Purposes Moonshot's docs name; only "file-extract" is served offline.
KNOWN_PURPOSES = ("file-extract", "image", "video", "batch")
#: File name endings read as UTF-8 text (a subset of Moonshot's supported list).
#: Parts a multipart upload may have: a form upload needs two ('file' and 'purpose').
MAX_PARTS = 8
_ID_CHARS = "0123456789abcdefghijklmnopqrstuv"


@dataclass(frozen=True)
class FileLimits:
    """Upload limits; the defaults are Moonshot's (1,000 files, 100 MB each, 10 GB in total)."""

    max_files: int = 1000
    max_file_bytes: int = 100 * 1024 * 1024
    max_total_bytes: int = 10 * 1024 * 1024 * 1024


class NotMultipart(BadRequest):
    """An upload that is not ``multipart/form-data`` with a boundary (the relay answers 415)."""


class _Form:
    """python-multipart's callbacks, collecting the named parts of one form."""

    def __init__(self) -> None:
        self.fields: dict[str, tuple[str | None, bytes]] = {}
        self.parts = 0
        self.headers: dict[bytes, bytes] = {}
        self.name, self.value, self.data = b"", b"", []  # the header and part being read

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.begin, "on_header_field": self.field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_part_data": self.part_data, "on_part_end": self.end}

    def begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(f"Invalid request: the multipart body has more than {MAX_PARTS} "
                             "parts; upload one file with the fields 'file' and 'purpose'")
        self.headers, self.data = {}, []

    def field(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.name.lower()] = self.value
        self.name, self.value = b"", b""

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self.data.append(data[start:end])

    def end(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if params.get(b"name"):
            filename = params.get(b"filename")
            self.fields[params[b"name"].decode("utf-8", "replace")] = (
                None if filename is None else filename.decode("utf-8", "replace"),
                b"".join(self.data))
        self.data = []


def parse_upload(content_type: str, body: bytes) -> tuple[str, bytes, str]:
    """Return (filename, data, purpose) from a multipart/form-data body, or raise BadRequest."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise NotMultipart("Invalid request: upload a file as multipart/form-data with the "
                           "fields 'file' and 'purpose'")
    form = _Form()
    try:
        parser = MultipartParser(params[b"boundary"], form.callbacks())
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Invalid request: the multipart body could not be parsed ({exc})"
                         ) from None
    if "file" not in form.fields:
        raise BadRequest("Invalid request: the multipart body has no 'file' field")
    purpose = form.fields.get("purpose", (None, b""))[1].decode("utf-8", "replace").strip()
    filename, data = form.fields["file"]
    return (filename or "upload"), data, purpose


class FileStore:
    """Uploaded files under a directory: metadata and extracted text, one JSON file each."""

    def __init__(self, root: str | os.PathLike[str], limits: FileLimits | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.limits = limits or FileLimits()
        self._lock = threading.Lock()

    def _path(self, file_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-z]{1,64}", file_id):
            raise BadRequest(f"File {file_id[:80]!r} not found", 404)
        return self.root / f"{file_id}.json"

    def _records(self) -> list[dict[str, Any]]:
        records = []
        for path in self.root.glob("*.json"):
            try:
                records.append(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError):
                continue  # a file deleted meanwhile, or not ours
        return sorted(records, key=lambda r: r.get("added_ns", r["meta"]["created_at"] * 10**9))

    def list(self) -> list[dict[str, Any]]:
        """Return the metadata of every stored file, oldest first."""
        return [r["meta"] for r in self._records()]

    def _record(self, file_id: str) -> dict[str, Any]:
        path = self._path(file_id)
        try:
            return json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise BadRequest(f"File {file_id!r} not found", 404) from None

    def get(self, file_id: str) -> dict[str, Any]:
        """Return one file's metadata, or raise BadRequest (404)."""
        return self._record(file_id)["meta"]

    def content(self, file_id: str) -> str:
        """Return one file's extracted text, or raise BadRequest (404)."""
        return self._record(file_id)["text"]

    def add(self, filename: str, data: bytes, purpose: str) -> dict[str, Any]:
        """Check, extract and store an upload; return its metadata, or raise BadRequest."""
        if purpose not in KNOWN_PURPOSES:
            raise BadRequest(f"Invalid purpose {purpose[:40]!r}: use one of "
                             f"{', '.join(KNOWN_PURPOSES)}")
        if purpose != "file-extract":
            raise BadRequest(f"The offline provider serves purpose 'file-extract' only, "
                             f"not {purpose!r}")
        if not data:
            raise BadRequest(f"File {filename!r} is empty: there is nothing to extract")
        limits = self.limits
        if len(data) > limits.max_file_bytes:
            raise BadRequest(f"File {filename!r} is too large: {len(data)} bytes, the limit "
                             f"is {limits.max_file_bytes} bytes per file")
        text = extract_text(filename, data)
        with self._lock:
            metas = self.list()
            if len(metas) >= limits.max_files:
                raise BadRequest(f"Too many files: the limit is {limits.max_files}; "
                                 f"delete some before uploading more")
            total = sum(m["bytes"] for m in metas) + len(data)
            if total > limits.max_total_bytes:
                raise BadRequest(f"Files too large in total: {total} bytes with this one, the "
                                 f"limit is {limits.max_total_bytes} bytes; delete some first")
            file_id = "c" + "".join(secrets.choice(_ID_CHARS) for _ in range(19))
            meta = {"id": file_id, "object": "file", "bytes": len(data),
                    "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                    "status": "ok", "status_details": ""}
            self._write(self._path(file_id), {"meta": meta, "text": text,
                                              "added_ns": time.time_ns()})  # upload order
        return meta

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, file_id: str) -> dict[str, Any]:
        """Delete one file; return Moonshot's ``{id, object, deleted}``, or raise (404)."""
        path = self._path(file_id)
        with self._lock:
            try:
                path.unlink()
            except FileNotFoundError:
                raise BadRequest(f"File {file_id!r} not found", 404) from None
        return {"id": file_id, "object": "file", "deleted": True}
