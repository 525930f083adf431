"""The offline provider's text extraction: UTF-8 text, PDF (pypdf), .docx (the standard library).

Every extraction is bounded, because a small file can be a bomb (issue 23: a 0.41 MB .docx took
the provider from 87 MB to 909 MB), and a refusal is a 400 ``invalid_request_error`` that names
the bound, as any file that does not parse is:

* any file: at most :data:`MAX_TEXT_CHARS` characters of text (Apache POI's default maximum text
  size), so a stored record, the content route and an attachment stay a bounded size;
* a .docx: at most :data:`DOCX_MAX_ENTRIES` entries (the central directory is measured before
  :mod:`zipfile` reads it, as zipfile finds it: ZIP64 is refused, a Word document never needs
  it); ``word/document.xml`` at most :data:`DOCX_MAX_XML_BYTES` and at most
  :data:`DOCX_MAX_RATIO` times its compressed size (POI's ZipSecureFile refuses ratios over 100
  too), checked on the declared sizes (zipfile reads an entry no further than its declared size,
  and a lie fails its CRC check); read as a stream with expat (handlers, no tree: memory is the
  text's), whose own limit refuses entity expansion;
* a PDF: at most :data:`PDF_MAX_PAGES` pages and :data:`EXTRACT_SECONDS` of work, checked
  before every page and every content-stream operator (pypdf's ``visitor_operand_before``); pypdf
  bounds decompression and parsing itself (``pypdf.Configuration``), and one content stream to
  :data:`PDF_MAX_STREAM_ELEMENTS` elements here: a thread does not stop the garbage collector,
  whose full passes over millions of pypdf objects held the whole process (the event loop too)
  for 260 ms each; a .docx has the same deadline, checked at every XML element.

The callers run :func:`extract_text` in a worker thread (helpers/offline/fileroutes.py): it is
pure-Python work in small steps, so the event loop keeps its turns while it runs.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from .errors import BadRequest

__all__ = ["DOCX_MAX_ENTRIES", "DOCX_MAX_RATIO", "DOCX_MAX_XML_BYTES", "EXTRACT_SECONDS",
           "MAX_TEXT_CHARS", "PDF_MAX_PAGES", "PDF_MAX_STREAM_ELEMENTS", "TEXT_SUFFIXES",
           "extract_text"]

#: File name endings read as UTF-8 text (a subset of Moonshot's supported list).
TEXT_SUFFIXES = (".txt", ".md", ".csv", ".json", ".log", ".py", ".yaml", ".yml", ".html",
                 ".ini", ".conf", ".js", ".ts", ".css", ".c", ".h", ".cpp", ".java", ".go")
#: Characters of text one file may give (Apache POI's default maximum text size).
MAX_TEXT_CHARS = 10_000_000
#: A .docx's bounds: entries in the archive, size and compression ratio of word/document.xml.
DOCX_MAX_ENTRIES = 1000
DOCX_MAX_XML_BYTES = 64 * 1024 * 1024
DOCX_MAX_RATIO = 100
#: A PDF's bounds: pages, operands and operators in one content stream (pypdf's default is
#: 2,000,000: its objects made the garbage collector stop the process for 260 ms at a time),
#: and seconds of extraction work (a .docx has the same deadline).
PDF_MAX_PAGES = 2000
PDF_MAX_STREAM_ELEMENTS = 250_000
EXTRACT_SECONDS = 30.0
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MB = 1024 * 1024


class _Refused(BadRequest):
    """A file over an extraction bound: its message is the whole story."""


def _too_much_text(size: int) -> _Refused:
    return _Refused(f"the text is longer than {MAX_TEXT_CHARS} characters ({size} so far), the "
                    "most the offline provider extracts from one file")


def _at_most_pages(pages: object) -> None:
    if isinstance(pages, int) and pages > PDF_MAX_PAGES:
        raise _Refused(f"it has {pages} pages, more than the {PDF_MAX_PAGES} the offline "
                       "provider reads")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader, apply_configuration  # imported here: only PDFs need them
    from pypdf.errors import LimitReachedError

    in_time = _deadline()  # before every page and every content-stream operator
    try:
        with apply_configuration(stream_parsing_work_maximum_count=PDF_MAX_STREAM_ELEMENTS):
            reader = PdfReader(io.BytesIO(data))
            _at_most_pages(reader.root_object["/Pages"].get_object().get("/Count", 0))
            _at_most_pages(len(reader.pages))  # the count it declares, then the pages found
            texts, size = [], 0
            for page in reader.pages:
                in_time()
                texts.append((page.extract_text(visitor_operand_before=in_time) or "").strip())
                size += len(texts[-1]) + 1
                if size > MAX_TEXT_CHARS:
                    raise _too_much_text(size)
    except LimitReachedError as exc:
        raise _Refused(f"it is over a bound of the PDF reader ({exc})") from None
    return "\n".join(texts).strip()


def _zip_directory_size(data: bytes) -> int:
    """Return the size of a zip's central directory, found as :mod:`zipfile` finds it."""
    end = len(data) - 22  # the end record, without a comment
    if end < 0 or data[end:end + 4] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        end = data.rfind(b"PK\x05\x06", max(len(data) - 22 - 65535, 0))  # after a comment
    if end < 0:
        raise zipfile.BadZipFile("no end of central directory")
    if data[end - 20:end - 16] == b"PK\x06\x07":  # zipfile would read the ZIP64 record
        raise _Refused("it is a ZIP64 archive, which a Word document never needs")
    return struct.unpack_from("<I", data, end + 12)[0] if end + 16 <= len(data) else 0


def _deadline() -> Callable[..., None]:
    """Return a check that raises once :data:`EXTRACT_SECONDS` have passed from now."""
    deadline = time.monotonic() + EXTRACT_SECONDS

    def in_time(*_: Any) -> None:
        if time.monotonic() >= deadline:
            raise _Refused(f"extracting its text took more than {EXTRACT_SECONDS:g} s")
    return in_time


def _paragraphs(xml: IO[bytes]) -> str:
    """Return the text of every ``w:p``, one a line, streaming (no tree is built)."""
    lines: list[str] = []  # a closed paragraph's text, "" while it is open
    open_paragraphs: list[tuple[int, list[str]]] = []  # a paragraph can hold one (a text box)
    in_text, size, in_time = 0, 0, _deadline()

    def start(name: str, _attrs: Any) -> None:
        nonlocal in_text, size
        in_time()
        if name == _W + "p":
            open_paragraphs.append((len(lines), []))
            lines.append("")
            size += 1  # its line break
        elif name == _W + "t":
            in_text += 1

    def end(name: str) -> None:
        nonlocal in_text
        if name == _W + "p" and open_paragraphs:
            at, parts = open_paragraphs.pop()
            lines[at] = "".join(parts)
        elif name == _W + "t":
            in_text -= 1

    def text(data: str) -> None:
        nonlocal size
        if in_text:
            for _, parts in open_paragraphs:
                parts.append(data)
            size += len(data) * len(open_paragraphs)
        if size > MAX_TEXT_CHARS:
            raise _too_much_text(size)

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    parser.ParseFile(xml)
    return "\n".join(lines).strip()


def _docx_text(data: bytes) -> str:
    directory = _zip_directory_size(data)
    if directory > DOCX_MAX_ENTRIES * 1024:  # an entry's record is 46 bytes and its name
        raise _Refused(f"its zip directory is {directory} bytes: more entries than the "
                       f"{DOCX_MAX_ENTRIES} a Word document needs")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if len(archive.infolist()) > DOCX_MAX_ENTRIES:
            raise _Refused(f"it has {len(archive.infolist())} entries, more than the "
                           f"{DOCX_MAX_ENTRIES} a Word document needs")
        info = archive.getinfo("word/document.xml")
        if info.file_size > DOCX_MAX_XML_BYTES:
            raise _Refused(f"word/document.xml would expand to {info.file_size} bytes, more "
                           f"than {DOCX_MAX_XML_BYTES // _MB} MiB")
        if info.file_size > DOCX_MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise _Refused(f"word/document.xml would expand {ratio} times, more than "
                           f"{DOCX_MAX_RATIO} (a zip bomb?)")
        with archive.open(info) as xml:
            return _paragraphs(xml)


def extract_text(filename: str, data: bytes) -> str:
    """Return the text of an uploaded file, or raise BadRequest (400) saying why not."""
    suffix = Path(filename).suffix.lower()
    try:
        if suffix in TEXT_SUFFIXES:
            text = data.decode("utf-8-sig")
            if len(text) > MAX_TEXT_CHARS:
                raise _too_much_text(len(text))
            return text
        if suffix == ".pdf":
            return _pdf_text(data)
        if suffix == ".docx":
            return _docx_text(data)
    except _Refused as exc:
        raise BadRequest(f"Could not extract text from {filename!r}: {exc}") from None
    except Exception as exc:  # any parser failure is the file's fault: a 400, not a crash
        raise BadRequest(f"Could not extract text from {filename!r}: the file is not a "
                         f"readable {suffix[1:] or 'text'} file ({type(exc).__name__})") from None
    kinds = ", ".join(TEXT_SUFFIXES[:3] + (".pdf", ".docx"))
    raise BadRequest(f"Unsupported file type {suffix or '(none)'!r} for {filename!r}: the "
                     f"offline provider extracts {kinds} and other text files")
