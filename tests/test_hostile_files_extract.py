"""The offline provider's Files API under hostile use (issue 23): a .docx zip bomb, hostile PDFs
and hostile forms are a 400 in Moonshot's shape, bounded, and worked on off the event loop
(``/healthz`` answers while an extraction is held at a known point: the ORDER is asserted)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import Hold
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

import helpers.offline.extract as extract
import helpers.offline.fileroutes as fileroutes
from helpers.offline import OfflineProvider
from tools.make_worksheet import OUT

pytestmark = pytest.mark.timeout(180)
KEY = "k"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[OfflineProvider]:
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, api_key=KEY,
                         name="offline-hostile-extract") as p:
        yield p


@pytest.fixture
def sdk(provider: OfflineProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=provider.base_url, api_key=KEY, max_retries=0) as client:
        yield client


def docx(xml: bytes | None = None, *, extra_entries: int = 0, stream_mb: int = 0) -> bytes:
    """A .docx: ``xml`` as word/document.xml, or ``stream_mb`` MiB of spaces inside one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for i in range(extra_entries):
            archive.writestr(f"word/media/{i}.bin", b"")
        if xml is not None:
            archive.writestr("word/document.xml", xml)
        else:
            with archive.open("word/document.xml", "w", force_zip64=False) as out:
                out.write(f"<w:document xmlns:w='{_W}'><w:body>".encode())
                for _ in range(stream_mb):
                    out.write(b" " * (1024 * 1024))
                out.write(b"</w:body></w:document>")
    return buf.getvalue()


def paragraphs(*texts: str) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in texts)
    return f"<w:document xmlns:w='{_W}'><w:body>{body}</w:body></w:document>".encode()


def refused(sdk: openai.OpenAI, name: str, data: bytes) -> str:
    """Upload and expect Moonshot's 400 invalid_request_error; return its message."""
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.files.create(file=(name, data), purpose="file-extract")
    error = caught.value.body
    assert caught.value.status_code == 400 and error["type"] == "invalid_request_error", error
    return error["message"]


def pdf(pages: int = 1, operators: int = 0) -> bytes:
    """A PDF of blank pages; with ``operators``, the first page shows that many strings."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(200, 200)
    if operators:
        page = writer.pages[0]
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                 NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): font})})
        stream = DecodedStreamObject()
        stream.set_data(b"BT /F1 12 Tf " + b"(x) Tj " * operators + b"ET")
        page.replace_contents(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- finding 8: the .docx zip bomb ----------------------------------------------------------------

def test_a_docx_zip_bomb_is_a_400_before_it_expands(sdk, provider):
    bomb = docx(stream_mb=100)  # 100 MiB of XML in about 100 KB
    assert len(bomb) < 200_000
    message = refused(sdk, "bomb.docx", bomb)
    assert "would expand to 104857" in message and "more than 64 MiB" in message
    assert list(provider.files.root.iterdir()) == []


def test_a_docx_over_the_compression_ratio_is_a_400(sdk):
    message = refused(sdk, "dense.docx", docx(stream_mb=10))  # under 64 MiB, about 1000 : 1
    assert "times, more than 100 (a zip bomb?)" in message


def test_a_docx_with_too_many_entries_is_a_400(sdk, monkeypatch):
    monkeypatch.setattr(extract, "DOCX_MAX_ENTRIES", 50)
    message = refused(sdk, "many.docx", docx(paragraphs("hi"), extra_entries=60))
    assert "more than the 50 a Word document needs" in message


def test_a_docx_whose_text_is_over_the_text_cap_is_a_400(sdk, monkeypatch):
    monkeypatch.setattr(extract, "MAX_TEXT_CHARS", 1000)
    message = refused(sdk, "long.docx", docx(paragraphs(*["word " * 50] * 10)))
    assert "longer than 1000 characters" in message


def test_a_docx_still_reads_paragraphs_tables_and_text_boxes(sdk):
    xml = (f"<w:document xmlns:w='{_W}'><w:body><w:p><w:r><w:t>First</w:t></w:r>"
           "<w:r><w:t xml:space='preserve'> line</w:t></w:r></w:p>"
           "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
           "<w:p><w:r><w:t>outer </w:t></w:r><w:r><w:txbxContent><w:p><w:r><w:t>boxed</w:t>"
           "</w:r></w:p></w:txbxContent></w:r></w:p></w:body></w:document>").encode()
    made = sdk.files.create(file=("shape.docx", docx(xml)), purpose="file-extract")
    assert sdk.files.content(made.id).text == "First line\ncell\nouter boxed\nboxed"


def test_a_docx_with_an_entity_bomb_is_a_400(sdk):
    entities = "".join(f'<!ENTITY e{i + 1} "{f"&e{i};" * 10}">' for i in range(8))
    xml = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e0 "laugh">{entities}]>'
           f"<w:document xmlns:w='{_W}'><w:body><w:p><w:r><w:t>&e8;</w:t></w:r></w:p>"
           "</w:body></w:document>").encode()
    assert "not a readable docx file" in refused(sdk, "laughs.docx", docx(xml))


# -- finding 8: PDF bounds -------------------------------------------------------------------------

def test_a_pdf_over_the_page_bound_is_a_400(sdk, monkeypatch):
    monkeypatch.setattr(extract, "PDF_MAX_PAGES", 3)
    assert "it has 5 pages, more than the 3" in refused(sdk, "long.pdf", pdf(pages=5))


def test_a_pdf_over_the_time_bound_is_a_400(sdk, monkeypatch):
    monkeypatch.setattr(extract, "EXTRACT_SECONDS", 0)  # out of time at the first check
    assert "took more than 0 s" in refused(sdk, "slow.pdf", pdf(operators=50_000))


def test_a_pdf_page_over_the_parsing_bound_is_a_400(sdk, monkeypatch):
    monkeypatch.setattr(extract, "PDF_MAX_STREAM_ELEMENTS", 1000)  # pypdf's own: 2,000,000
    assert "over a bound of the PDF reader" in refused(sdk, "dense.pdf", pdf(operators=1000))


def test_a_pdf_within_its_bounds_is_still_read(sdk):
    made = sdk.files.create(file=("shown.pdf", pdf(operators=3)), purpose="file-extract")
    assert sdk.files.content(made.id).text == "xxx"


# -- off the event loop ----------------------------------------------------------------------------

def healthz_while_held(provider: OfflineProvider, hold: Hold,
                       heavy: Callable[[], Any]) -> Any:
    return hold.healthz_during(heavy, provider.base_url.removesuffix("/v1") + "/healthz")


@pytest.mark.parametrize("name,data,where", [
    ("notes.docx", docx(paragraphs("held")), "_docx_text"),
    ("worksheet.pdf", OUT.read_bytes(), "_pdf_text"),
])
def test_healthz_answers_while_a_file_is_extracted(sdk, provider, monkeypatch, name, data, where):
    hold = Hold()
    monkeypatch.setattr(extract, where, hold.wrap(getattr(extract, where)))
    made = healthz_while_held(provider, hold, lambda: sdk.files.create(
        file=(name, data), purpose="file-extract"))
    assert made.filename == name and made.status == "ok"


def test_healthz_answers_while_an_upload_form_is_parsed(sdk, provider, monkeypatch):
    hold = Hold()
    monkeypatch.setattr(fileroutes, "parse_upload", hold.wrap(fileroutes.parse_upload))
    made = healthz_while_held(provider, hold, lambda: sdk.files.create(
        file=("a.md", b"# held"), purpose="file-extract"))
    assert sdk.files.content(made.id).text == "# held"


def test_a_megabyte_of_empty_parts_is_a_400_at_the_provider(provider):
    r = httpx.post(provider.base_url + "/files", timeout=60,
                   content=b"--B\r\n\r\nx\r\n" * (1024 * 1024 // 10),
                   headers={"content-type": "multipart/form-data; boundary=B",
                            "authorization": f"Bearer {KEY}"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "more than 8 parts" in r.json()["error"]["message"]
