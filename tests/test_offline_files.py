"""The offline provider's Files API and token estimate, with the official openai SDK as client."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import openai
import pytest

from helpers.money.tokens import count_prompt_tokens
from helpers.offline import OfflineProvider
from helpers.offline.filestore import FileLimits
from tools.make_worksheet import LINES, OUT

WORKSHEET = OUT.read_bytes()


@pytest.fixture
def provider(tmp_path: Path):
    limits = FileLimits(max_files=3, max_file_bytes=2000, max_total_bytes=2500)
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, file_limits=limits,
                         name="offline-files") as p:
        yield p


def sdk(p: OfflineProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=p.base_url, api_key="k", max_retries=0)


def docx(text: str) -> bytes:
    body = ('<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f'<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", body)
    return buf.getvalue()


def test_every_file_operation(provider, tmp_path):
    client = sdk(provider)
    made = client.files.create(file=("worksheet.pdf", WORKSHEET), purpose="file-extract")
    assert (made.object, made.bytes, made.filename, made.status) == \
        ("file", len(WORKSHEET), "worksheet.pdf", "ok")
    assert made.purpose == "file-extract" and made.created_at > 1_700_000_000
    assert [f.id for f in client.files.list()] == [made.id]
    assert client.files.retrieve(made.id).bytes == len(WORKSHEET)
    text = client.files.content(made.id).text
    assert text.splitlines() == LINES
    gone = client.files.delete(made.id)
    assert (gone.id, gone.deleted) == (made.id, True)
    assert list(client.files.list()) == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,data,expected", [
    ("notes.md", b"# Notes\nArea = pi r^2\n", "# Notes\nArea = pi r^2\n"),
    ("plain.txt", "Grüße\n".encode(), "Grüße\n"),
    ("lesson.docx", docx("Photosynthesis needs light"), "Photosynthesis needs light"),
])
def test_text_markdown_and_docx_are_extracted(provider, name, data, expected):
    client = sdk(provider)
    made = client.files.create(file=(name, data), purpose="file-extract")
    assert client.files.content(made.id).text == expected


def test_iterating_files_list_ends(provider):
    """Regression: ``for f in client.files.list()`` asked ``?after=<last id>`` forever."""
    client = sdk(provider)
    made = [client.files.create(file=(f"{i}.txt", b"x"), purpose="file-extract").id
            for i in range(2)]
    assert [f.id for f in client.files.list()] == made
    assert client.files.list(after=made[0]).data[0].id == made[1]
    assert provider.stats()["requests"] == 2 + 2 + 1  # two uploads, a page and an empty page, one


def test_files_survive_a_restart(tmp_path):
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-files") as first:
        made = sdk(first).files.create(file=("w.pdf", WORKSHEET), purpose="file-extract")
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-files") as second:
        again = sdk(second).files.retrieve(made.id)
        assert again.model_dump() == made.model_dump()
        assert sdk(second).files.content(made.id).text.splitlines() == LINES


def error_of(call) -> tuple[int, str, str]:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    err = info.value.body
    return info.value.status_code, err["type"], err["message"]


@pytest.mark.parametrize("name,data,purpose,words", [
    ("w.pdf", WORKSHEET, "assistants", "Invalid purpose"),
    ("w.pdf", WORKSHEET, "image", "file-extract' only"),
    ("empty.txt", b"", "file-extract", "empty"),
    ("big.txt", b"x" * 2001, "file-extract", "too large"),
    ("photo.exe", b"MZ", "file-extract", "Unsupported file type"),
    ("broken.pdf", b"%PDF-1.4 not really", "file-extract", "Could not extract"),
    ("broken.docx", b"PK nothing", "file-extract", "Could not extract"),
    ("latin1.txt", "café".encode("latin-1"), "file-extract", "Could not extract"),
])
def test_bad_uploads_get_a_400_and_leave_nothing(provider, tmp_path, name, data, purpose, words):
    client = sdk(provider)
    status, kind, message = error_of(
        lambda: client.files.create(file=(name, data), purpose=purpose))  # type: ignore[arg-type]
    assert (status, kind) == (400, "invalid_request_error") and words in message
    assert list(tmp_path.iterdir()) == [] and list(client.files.list()) == []


def test_too_many_files_and_too_much_in_total(provider):
    client = sdk(provider)
    for i in range(2):
        client.files.create(file=(f"{i}.txt", b"x" * 1000), purpose="file-extract")
    status, _, message = error_of(
        lambda: client.files.create(file=("2.txt", b"x" * 600), purpose="file-extract"))
    assert status == 400 and "in total" in message
    client.files.create(file=("2.txt", b"x" * 10), purpose="file-extract")
    status, _, message = error_of(
        lambda: client.files.create(file=("3.txt", b"x"), purpose="file-extract"))
    assert status == 400 and "Too many files" in message
    assert len(list(client.files.list())) == 3


def test_unknown_id_is_a_404(provider):
    client = sdk(provider)
    for call in (client.files.retrieve, client.files.delete, client.files.content):
        status, kind, message = error_of(lambda call=call: call("cnosuchfile0000000000"))
        assert (status, kind) == (404, "resource_not_found_error") and "not found" in message


def test_a_body_that_is_not_multipart_is_a_400(provider):
    r = httpx.post(provider.base_url + "/files", json={"file": "x", "purpose": "file-extract"},
                   headers={"Authorization": "Bearer k"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    assert httpx.get(provider.base_url + "/files").status_code == 401  # no key, no files


def test_estimate_equals_usage_for_the_same_request(provider):
    client = sdk(provider)
    made = client.files.create(file=("w.pdf", WORKSHEET), purpose="file-extract")
    messages = [{"role": "system", "content": client.files.content(made.id).text},
                {"role": "user", "content": "How long is the hypotenuse in question 1?"}]
    r = client.post("/tokenizers/estimate-token-count", cast_to=httpx.Response,
                    body={"model": "moonshot-v1-8k", "messages": messages})
    estimate = r.json()["data"]["total_tokens"]
    usage = client.chat.completions.create(model="moonshot-v1-8k", messages=messages).usage
    assert estimate == usage.prompt_tokens == count_prompt_tokens(messages) > 50
    bad = httpx.post(provider.base_url + "/tokenizers/estimate-token-count",
                     json={"model": "moonshot-v1-8k"}, headers={"Authorization": "Bearer k"})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]


def test_a_question_about_the_file_is_answered_from_its_text(provider):
    client = sdk(provider)
    made = client.files.create(file=("w.pdf", WORKSHEET), purpose="file-extract")
    messages = [{"role": "system", "content": client.files.content(made.id).text},
                {"role": "system", "content": "You assist a mathematics teacher."}]
    for question, line in [("How long is the hypotenuse in question 1 of the worksheet?", 1),
                           ("Is the triangle in question 3 of the worksheet right?", 3),
                           ("What hint does the worksheet give?", 4)]:
        stream = client.chat.completions.create(
            model="moonshot-v1-8k", stream=True,
            messages=[*messages, {"role": "user", "content": question}])
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == f'The file says: "{LINES[line]}"'
    plain = client.chat.completions.create(model="moonshot-v1-8k", messages=[
        {"role": "user", "content": "How long is the hypotenuse in question 1 of the worksheet?"}])
    assert "file says" not in plain.choices[0].message.content  # no file text, no quote
