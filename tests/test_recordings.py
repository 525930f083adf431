"""The offline provider's flavours against streams and error bodies the providers publish."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from helpers import providers
from helpers.providers import FAMILIES, USAGE_TOP_LEVEL
from helpers.providers.recordings import (
    ERROR_RECORDINGS,
    RECORDINGS,
    error_shape,
    offline_lines,
    wire_shape,
)
from helpers.settings import OFFLINE_KEY, Config


def config(provider) -> Config:
    return Config("offline", provider.base_url, "moonshot-v1-8k", OFFLINE_KEY)


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_each_offline_flavour_has_the_shape_of_its_recording(offline, recording):
    real, ours = wire_shape(recording.lines), wire_shape(offline_lines(config(offline), recording))
    assert ours == real, f"{recording.name}: offline {ours} != published {real}"
    assert real.chunk_fields == ("id", "object", "created", "model", "choices")
    assert real.choice_fields == ("index", "delta", "finish_reason")
    assert real.ending[-1] == "[DONE]" and offline.stats()["completed"] == 1


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_the_provider_table_says_what_the_recordings_show(recording):
    traits = FAMILIES[recording.family]
    assert wire_shape(recording.lines).usage == traits.usage_places(recording.asked)
    assert providers.MODELS[recording.offline_model].family == recording.family


def test_a_flavour_that_drifts_from_its_recording_is_caught(offline, monkeypatch):
    """Move Qwen's asked-for usage to the last chunk: the shape test must see it."""
    qwen = next(r for r in RECORDINGS if r.family == "qwen")
    monkeypatch.setitem(FAMILIES, "qwen",
                        dataclasses.replace(FAMILIES["qwen"], usage_when_asked=USAGE_TOP_LEVEL))
    ours = wire_shape(offline_lines(config(offline), qwen))
    assert ours.usage == (USAGE_TOP_LEVEL,) and ours != wire_shape(qwen.lines)
    assert offline.stats()["completed"] == 1


def test_every_recording_names_its_source_and_date():
    for recording in (*RECORDINGS, *ERROR_RECORDINGS):
        assert recording.source and recording.checked.startswith("20"), recording.name
    assert {r.family for r in RECORDINGS} >= {"moonshot", "deepseek", "qwen", "openai", "local"}


def test_the_offline_error_body_has_moonshots_documented_shape(offline):
    moonshot = next(r for r in ERROR_RECORDINGS if r.name == "Moonshot")
    reply = httpx.post(f"{offline.base_url}/chat/completions", json={
        "model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "hi [fault:401]"}]},
        headers={"Authorization": f"Bearer {OFFLINE_KEY}"})
    assert reply.status_code == 401
    assert error_shape(reply.json()) == error_shape(moonshot.body) == ("type", "message")
    assert set(reply.json()) == set(moonshot.body) == {"error"}


def test_wire_shape_reads_comments_and_blank_lines_as_nothing():
    lines = [": keep-alive", "", *RECORDINGS[0].lines]
    assert wire_shape(lines) == wire_shape(RECORDINGS[0].lines)
    with pytest.raises(ValueError):
        wire_shape([": keep-alive", "data: [DONE]"])
