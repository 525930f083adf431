"""helpers.attachments: uploaded files as one system message; estimates before sending."""

from __future__ import annotations

import asyncio

import openai
import pytest

from helpers.attachments import afile_message, estimate_tokens, file_message, join_files
from helpers.offline import OfflineProvider
from tools.make_worksheet import LINES, OUT


@pytest.fixture
def provider(tmp_path):
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-helper-files") as p:
        yield p


def test_several_files_are_joined_under_their_names(provider):
    client = openai.OpenAI(base_url=provider.base_url, api_key="k")
    ids = [client.files.create(file=("worksheet.pdf", OUT.read_bytes()), purpose="file-extract").id,
           client.files.create(file=("notes.md", b"Area = pi r^2"), purpose="file-extract").id]
    message = file_message(client, ids)
    assert message["role"] == "system"
    assert message["content"].startswith("Content of the file worksheet.pdf:\n" + LINES[0])
    assert message["content"].endswith("Content of the file notes.md:\nArea = pi r^2")
    aclient = openai.AsyncOpenAI(base_url=provider.base_url, api_key="k")
    assert asyncio.run(afile_message(aclient, ids)) == message
    with pytest.raises(ValueError):
        join_files([])


def test_the_estimate_is_the_usage_and_falls_back_without_the_endpoint(provider):
    client = openai.OpenAI(base_url=provider.base_url, api_key="k")
    messages = [{"role": "user", "content": "How long is the hypotenuse?"}]
    estimate = estimate_tokens(client, "moonshot-v1-8k", messages)
    usage = client.chat.completions.create(model="moonshot-v1-8k", messages=messages).usage
    assert estimate == usage.prompt_tokens and estimate.exact
    # a provider without the endpoint (404): the offline rule, marked as not exact
    bad = openai.OpenAI(base_url=provider.base_url.removesuffix("/v1") + "/nowhere", api_key="k",
                        max_retries=0)
    fallback = estimate_tokens(bad, "moonshot-v1-8k", messages)
    assert fallback == usage.prompt_tokens and not fallback.exact
