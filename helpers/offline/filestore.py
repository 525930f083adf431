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
* Extraction: plain text and Markdown (and other UTF-8 text files Moonshot lists) as they are;
  PDF with pypdf; ``.docx`` with the standard library (a .docx is a zip of XML), so no office
  library is needed. Anything else, or a file that does not parse, is a 400, never a crash.
* Storage: ``<id>.json`` holds metadata and extracted text, written atomically (temporary file,
  then ``os.replace``) after extraction succeeded, so a refused upload leaves nothing behind and
  ``files.list()`` survives a restart. The original bytes are not kept: only the text is served.
* Multipart is parsed with the standard library's ``email`` parser, so the provider needs no
  form-parsing package. The error *messages* for the limits are ours (Moonshot does not publish
  its wording); the status (400, 404) and ``invalid_request_error`` type are Moonshot's.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .errors import BadRequest

__all__ = ["KNOWN_PURPOSES", "TEXT_SUFFIXES", "FileLimits", "FileStore", "extract_text",
           "parse_upload"]

#: Purposes Moonshot's docs name; only "file-extract" is served offline.
KNOWN_PURPOSES = ("file-extract", "image", "video", "batch")
#: File name endings read as UTF-8 text (a subset of Moonshot's supported list).
TEXT_SUFFIXES = (".txt", ".md", ".csv", ".json", ".log", ".py", ".yaml", ".yml", ".html",
                 ".ini", ".conf", ".js", ".ts", ".css", ".c", ".h", ".cpp", ".java", ".go")
_ID_CHARS = "0123456789abcdefghijklmnopqrstuv"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True)
class FileLimits:
    """Upload limits; the defaults are Moonshot's (1,000 files, 100 MB each, 10 GB in total)."""

    max_files: int = 1000
    max_file_bytes: int = 100 * 1024 * 1024
    max_total_bytes: int = 10 * 1024 * 1024 * 1024


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader  # imported here: only PDFs need it

    reader = PdfReader(io.BytesIO(data))
    return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


def _docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = ElementTree.fromstring(archive.read("word/document.xml"))
    paragraphs = ("".join(t.text or "" for t in p.iter(_W + "t")) for p in root.iter(_W + "p"))
    return "\n".join(paragraphs).strip()


def extract_text(filename: str, data: bytes) -> str:
    """Return the text of an uploaded file, or raise BadRequest (400) saying why not."""
    suffix = Path(filename).suffix.lower()
    try:
        if suffix in TEXT_SUFFIXES:
            return data.decode("utf-8-sig")
        if suffix == ".pdf":
            return _pdf_text(data)
        if suffix == ".docx":
            return _docx_text(data)
    except Exception as exc:  # any parser failure is the file's fault: a 400, not a crash
        raise BadRequest(f"Could not extract text from {filename!r}: the file is not a "
                         f"readable {suffix[1:] or 'text'} file ({type(exc).__name__})") from None
    kinds = ", ".join(TEXT_SUFFIXES[:3] + (".pdf", ".docx"))
    raise BadRequest(f"Unsupported file type {suffix or '(none)'!r} for {filename!r}: the "
                     f"offline provider extracts {kinds} and other text files")


def parse_upload(content_type: str, body: bytes) -> tuple[str, bytes, str]:
    """Return (filename, data, purpose) from a multipart/form-data body, or raise BadRequest."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("Invalid request: upload a file as multipart/form-data with the "
                         "fields 'file' and 'purpose'")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BadRequest("Invalid request: the multipart body could not be parsed")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    if "file" not in fields:
        raise BadRequest("Invalid request: the multipart body has no 'file' field")
    purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace").strip()
    filename, data = fields["file"]
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
