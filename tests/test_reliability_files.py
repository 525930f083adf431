"""Reliability, family 4 (bad input), the file routes: the offline provider's Files API and the
relay's /api/files, over real sockets. Every case is a 4xx with a message, the server still
answers afterwards, and no file (nor a half-written one) is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.offline import OfflineProvider
from helpers.offline.filestore import FileLimits
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
KEY = {"Authorization": "Bearer k"}
FORM = "multipart/form-data; boundary=XyZ"


def form(name: str, data: bytes, purpose: str = "file-extract") -> bytes:
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n" +
            purpose.encode() + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"" + name.encode() + b"\"\r\n\r\n" + data + b"\r\n--XyZ--\r\n")


#: (method, path, content type, body) -> expected status
PROVIDER_CASES = [
    ("POST", "/files", FORM, form("w.txt", b"x", "assistants"), 400),
    ("POST", "/files", FORM, form("w.txt", b"x", "video"), 400),
    ("POST", "/files", FORM, form("", b"x", ""), 400),
    ("POST", "/files", FORM, form("empty.txt", b""), 400),
    ("POST", "/files", FORM, form("big.txt", b"x" * 5000), 400),
    ("POST", "/files", FORM, form("a.exe", b"MZ"), 400),
    ("POST", "/files", FORM, form("noext", b"text"), 400),
    ("POST", "/files", FORM, form("half.pdf", b"%PDF-1.4\n1 0 obj\n<<"), 400),
    ("POST", "/files", FORM, form("x.docx", b"PK\x03\x04broken"), 400),
    ("POST", "/files", FORM, form("bad.txt", b"\xff\xfe\xfa"), 400),
    ("POST", "/files", FORM, b"--XyZ\r\nno headers, no end", 400),
    ("POST", "/files", "multipart/form-data", b"no boundary", 400),
    ("POST", "/files", "application/json", b'{"file": "x"}', 400),
    ("POST", "/files", "text/plain", b"", 400),
    ("GET", "/files/nope", None, None, 404),
    ("GET", "/files/..%2F..%2Fetc%2Fpasswd", None, None, 404),
    ("GET", "/files/" + "a" * 300 + "/content", None, None, 404),
    ("DELETE", "/files/cUPPERCASE", None, None, 404),
    ("POST", "/tokenizers/estimate-token-count", "application/json", b"[]", 400),
    ("POST", "/tokenizers/estimate-token-count", "application/json", b"{not json", 400),
    ("POST", "/tokenizers/estimate-token-count", "application/json", b'{"messages": [1]}', 400),
]


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OfflineProvider]:
    folder = tmp_path_factory.mktemp("files")
    limits = FileLimits(max_files=5, max_file_bytes=4000, max_total_bytes=8000)
    with OfflineProvider(delay_ms=0, files_dir=folder, file_limits=limits,
                         name="offline-reliability-files") as p:
        yield p


@pytest.mark.parametrize("method,path,ctype,body,status", PROVIDER_CASES,
                         ids=[f"{c[0]} {c[1][:20]} {(c[3] or b'')[:12]!r}" for c in PROVIDER_CASES])
def test_bad_file_input_to_the_provider(provider, method, path, ctype, body, status):
    headers = {**KEY, **({"content-type": ctype} if ctype else {})}
    r = httpx.request(method, provider.base_url + path, headers=headers, content=body,
                      timeout=10)
    assert r.status_code == status and r.json()["error"]["message"], r.text
    assert list(provider.files.root.iterdir()) == []  # nothing kept, not even a temporary file
    assert httpx.get(provider.base_url + "/files", headers=KEY).json()["data"] == []


@pytest.fixture(scope="module")
def relay(provider: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", provider.base_url, "moonshot-v1-8k", "k")
    server = start_relay(config, read_timeout=5, jupyter=False, name="relay-reliability-files",
                         max_upload_bytes=UPLOAD_LIMIT)
    yield server
    server.stop()


UPLOAD_LIMIT = 100_000  # the relay's own limit for uploads, small here (8 MB by default)
RELAY_CASES = [
    ("POST", "/api/files", FORM, form("empty.txt", b""), 400),
    ("POST", "/api/files", FORM, form("run.sh.exe", b"MZ"), 415),
    ("POST", "/api/files", FORM, form("big.txt", b"x" * 5000), 400),  # the provider's limit
    ("POST", "/api/files", FORM, form("half.pdf", b"%PDF-1.4 nothing"), 400),
    ("POST", "/api/files", FORM, form("x.md", b"x" * 300_000), 413),  # the relay's upload limit
    ("POST", "/api/files", "application/json", b'{"file": "x"}', 415),
    ("POST", "/api/files", "multipart/form-data", b"no boundary", 415),
    ("DELETE", "/api/files/cnotyours", None, None, 404),
    ("POST", "/api/chat/stream", "application/json",
     b'{"question": "What is in the worksheet?", "files": ["cnotyours"]}', 404),
    ("POST", "/api/chat/stream", "application/json",
     b'{"question": "q", "files": ["a", "b", "c", "d", "e", "f"]}', 422),
    ("POST", "/api/chat/stream", "application/json", b'{"question": "q", "files": "a"}', 422),
]


@pytest.mark.parametrize("method,path,ctype,body,status", RELAY_CASES,
                         ids=[f"{c[0]} {c[1][:20]} {(c[3] or b'')[:16]!r}" for c in RELAY_CASES])
def test_bad_file_input_to_the_relay(relay, provider, method, path, ctype, body, status):
    headers = {"content-type": ctype} if ctype else {}
    before = provider.stats()["requests"]
    r = httpx.request(method, relay.url.rstrip("/") + path, headers=headers, content=body,
                      timeout=10)
    assert r.status_code == status and r.json()["error"]["message"], r.text
    assert list(provider.files.root.iterdir()) == []
    still = httpx.post(relay.url.rstrip("/") + "/api/chat/stream", timeout=10,
                       json={"question": "What is 1+1?"})
    assert still.status_code == 200 and "event: done" in still.text
    assert provider.stats()["requests"] - before <= 2  # at most the upload tried, and the answer


def test_nothing_is_left_after_a_good_file_is_deleted(relay, provider, tmp_path: Path):
    made = httpx.post(relay.url.rstrip("/") + "/api/files", files={"file": ("a.md", b"# A")})
    file_id = made.json()["id"]
    assert len(list(provider.files.root.iterdir())) == 1
    assert httpx.delete(relay.url.rstrip("/") + f"/api/files/{file_id}").status_code == 200
    assert list(provider.files.root.iterdir()) == []
