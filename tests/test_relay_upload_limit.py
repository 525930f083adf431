"""The relay's file upload has a limit of its own (8 MB by default, ``max_upload_bytes``), not
the 256 kB of a JSON body: a real worksheet PDF over 256 kB attaches; one over the limit is a
413 that says the limit, before the provider sees anything, and the relay keeps answering."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader, PdfWriter

from helpers.offline import OfflineProvider
from helpers.relay import MAX_BODY_BYTES, Relay, start_relay
from helpers.relay.guards import MAX_UPLOAD_BYTES
from helpers.settings import Config
from tools.make_worksheet import LINES, OUT

pytestmark = pytest.mark.timeout(60)
SMALL_LIMIT = 400_000


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineProvider]:
    with OfflineProvider(delay_ms=0, files_dir=tmp_path_factory.mktemp("files"),
                         name="offline-upload-limit") as p:
        yield p


def relay_with(provider: OfflineProvider, name: str, **options) -> Relay:
    return start_relay(Config("offline", provider.base_url, "moonshot-v1-8k", "k"),
                       read_timeout=5, jupyter=False, name=name, **options)


@pytest.fixture(scope="module")
def relay(provider: OfflineProvider) -> Iterator[Relay]:
    server = relay_with(provider, "relay-upload-default")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def small(provider: OfflineProvider) -> Iterator[Relay]:
    server = relay_with(provider, "relay-upload-small", max_upload_bytes=SMALL_LIMIT)
    yield server
    server.stop()


def big_worksheet(size: int) -> bytes:
    """The shipped worksheet with an incompressible attachment: a real PDF of ``size`` bytes or
    more, whose page text is still the worksheet's."""
    writer = PdfWriter(clone_from=str(OUT))
    writer.add_attachment("scan.bin", os.urandom(size))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def url(relay: Relay, path: str) -> str:
    return relay.url.rstrip("/") + path


def deltas(text: str) -> str:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "delta":
            found.append(json.loads(lines["data"])["content"])
    return "".join(found)


def test_a_worksheet_pdf_over_256_kb_attaches_and_is_read(relay: Relay,
                                                          provider: OfflineProvider) -> None:
    pdf = big_worksheet(600_000)
    assert MAX_BODY_BYTES < len(pdf) < MAX_UPLOAD_BYTES
    assert PdfReader(io.BytesIO(pdf)).pages[0].extract_text().startswith(LINES[0])
    up = httpx.post(url(relay, "/api/files"), timeout=30,
                    files={"file": ("worksheet-scan.pdf", pdf, "application/pdf")})
    assert up.status_code == 200, up.text
    assert up.json()["bytes"] == len(pdf)
    assert provider.files.get(up.json()["id"]) is not None  # the provider has it
    answer = httpx.post(url(relay, "/api/chat/stream"), timeout=30, json={
        "question": "How long is the hypotenuse in question 1 of the worksheet?",
        "files": [up.json()["id"]]})
    assert deltas(answer.text) == f'The file says: "{LINES[1]}"'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_over_the_limit_is_a_413_that_says_the_limit(small: Relay,
                                                               provider: OfflineProvider,
                                                               chunked: bool) -> None:
    pdf = big_worksheet(SMALL_LIMIT)
    body, headers = _multipart(pdf)
    before = provider.stats()["statuses"]
    content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    refused = httpx.post(url(small, "/api/files"), content=content, headers=headers, timeout=30)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["type"] == "request_too_large"
    assert error["message"] == ("File too large for this relay: at most 400,000 bytes per "
                                "upload (0.4 MB; create_app(max_upload_bytes=...) sets it)")
    assert provider.stats()["statuses"] == before  # the provider never saw it
    assert httpx.get(url(small, "/api/files")).json() == {"data": []}
    still = httpx.post(url(small, "/api/chat/stream"), json={"question": "What is 1+1?"},
                       timeout=30)
    assert still.status_code == 200 and "event: done" in still.text


def test_other_bodies_keep_the_256_kb_limit(small: Relay) -> None:
    big = httpx.post(url(small, "/api/chat/stream"), timeout=30,
                     json={"question": "x" * (MAX_BODY_BYTES + 10)})
    assert big.status_code == 413
    assert big.json()["error"]["message"] == \
        f"Request body too large: at most {MAX_BODY_BYTES} bytes"


def _multipart(data: bytes) -> tuple[bytes, dict[str, str]]:
    request = httpx.Request("POST", "http://x/", files={"file": ("scan.pdf", data,
                                                                "application/pdf")})
    body = request.read()
    return body, {"content-type": request.headers["content-type"]}


def test_the_default_is_a_few_megabytes() -> None:
    assert MAX_BODY_BYTES * 10 < MAX_UPLOAD_BYTES <= 10_000_000
    assert Path(OUT).stat().st_size < MAX_BODY_BYTES  # the shipped one fits either way
