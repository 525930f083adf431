"""The relay's file routes: upload through the relay (the key stays there), ask about the file,
see and delete only your own files; bad uploads are a 4xx and lose nothing else."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from helpers.offline import OfflineProvider
from helpers.relay import create_app
from helpers.relay.guards import MAX_UPLOAD_BYTES
from helpers.settings import Config
from tools.make_worksheet import LINES, OUT

LOCAL = "http://127.0.0.1:4020"
ALICE, BOB = ("10.0.0.1", 5000), ("10.0.0.2", 5000)


@pytest.fixture
def provider(tmp_path: Path):
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-relay-files") as p:
        yield p


def run(provider: OfflineProvider, script):
    """Run ``script(as_client)`` against a relay app in-process; as_client(addr) -> AsyncClient."""
    app = create_app(Config("offline", provider.base_url, "moonshot-v1-8k", "relay-key"),
                     read_timeout=5)

    async def go():
        def as_client(addr):
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=addr),
                                     base_url=LOCAL)
        return await script(as_client)
    return asyncio.run(go())


def events(text: str) -> list[tuple[str, dict]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_upload_ask_list_delete_only_your_own(provider):
    async def script(as_client):
        async with as_client(ALICE) as alice, as_client(BOB) as bob:
            up = await alice.post("/api/files", files={"file": ("worksheet.pdf", OUT.read_bytes(),
                                                                "application/pdf")})
            assert up.status_code == 200, up.text
            file_id = up.json()["id"]
            assert up.json() == {"id": file_id, "filename": "worksheet.pdf",
                                 "bytes": len(OUT.read_bytes())}
            answer = await alice.post("/api/chat/stream", json={
                "question": "How long is the hypotenuse in question 1 of the worksheet?",
                "files": [file_id]})
            text = "".join(d["content"] for e, d in events(answer.text) if e == "delta")
            assert text == f'The file says: "{LINES[1]}"'
            assert (await alice.get("/api/files")).json()["data"][0]["id"] == file_id
            assert (await bob.get("/api/files")).json() == {"data": []}
            for response in [await bob.delete(f"/api/files/{file_id}"),
                             await bob.post("/api/chat/stream", json={
                                 "question": "What is in the worksheet?", "files": [file_id]})]:
                assert response.status_code == 404 and "of yours" in response.text
            gone = await alice.delete(f"/api/files/{file_id}")
            assert gone.json() == {"id": file_id, "deleted": True}
            assert (await alice.get("/api/files")).json() == {"data": []}
        return file_id

    file_id = run(provider, script)
    assert list(provider.files.list()) == []  # deleted at the provider too
    assert file_id.startswith("c")
    assert "relay-key" not in json.dumps(provider.stats())


@pytest.mark.parametrize("kwargs,status,words", [
    ({"files": {"file": ("empty.txt", b"")}}, 400, "is empty"),
    ({"files": {"file": ("tool.exe", b"MZ")}}, 415, "this relay takes"),
    ({"json": {"file": "x"}}, 415, "multipart/form-data"),
    ({"files": {"file": ("big.txt", b"x" * (MAX_UPLOAD_BYTES + 1))}}, 413, "too large"),
    ({"files": {"file": ("broken.pdf", b"%PDF-1.4 nothing")}}, 400, "Could not extract"),
])
def test_bad_uploads_are_a_4xx_and_leave_nothing(provider, kwargs, status, words):
    async def script(as_client):
        async with as_client(ALICE) as alice:
            before = await alice.post("/api/files", files={"file": ("a.md", b"# kept")})
            bad = await alice.post("/api/files", **kwargs)
            after = await alice.get("/api/files")
            return before.json()["id"], bad, after.json()["data"]

    kept, bad, listed = run(provider, script)
    assert bad.status_code == status and words in bad.json()["error"]["message"]
    assert [f["id"] for f in listed] == [kept]  # nothing lost, nothing added
    assert [f["id"] for f in provider.files.list()] == [kept]
