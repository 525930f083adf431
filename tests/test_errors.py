"""Friendly messages: every SDK failure the lessons provoke maps to its own sentence, key-free."""

from __future__ import annotations

import httpx
import openai
import pytest

from helpers import FRIENDLY, describe_failure, error_summary, friendly_message, scrub
from helpers.errors import describe_error

FAKE_KEY = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def client(provider, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key=FAKE_KEY, max_retries=0, **options)


def failure(provider, marker: str, **options) -> openai.APIError:
    try:
        stream = client(provider, **options).chat.completions.create(
            model="moonshot-v1-8k", stream=True,
            messages=[{"role": "user", "content": f"What is 1+1? {marker}"}])
        for _ in stream:
            pass
    except openai.APIError as err:
        return err
    raise AssertionError(f"{marker} did not fail")


@pytest.mark.parametrize(("marker", "cls", "summary"), [
    ("[fault:400]", openai.BadRequestError, "BadRequestError · HTTP 400 · invalid_request_error"),
    ("[fault:401]", openai.AuthenticationError,
     "AuthenticationError · HTTP 401 · invalid_authentication_error"),
    ("[fault:403]", openai.PermissionDeniedError,
     "PermissionDeniedError · HTTP 403 · permission_denied_error"),
    ("[fault:404]", openai.NotFoundError, "NotFoundError · HTTP 404 · resource_not_found_error"),
    ("[fault:429]", openai.RateLimitError, "RateLimitError · HTTP 429 · rate_limit_reached_error"),
    ("[fault:500]", openai.InternalServerError, "InternalServerError · HTTP 500 · server_error"),
    ("[fault:503]", openai.InternalServerError,
     "InternalServerError · HTTP 503 · engine_overloaded_error"),
    ("[fault:midstream]", openai.APIError, "APIError · server_error"),
    ("[fault:cut]", openai.APIConnectionError, "APIConnectionError"),
])
def test_each_offline_fault_gets_its_class_summary_and_sentence(offline, marker, cls, summary):
    err = failure(offline, marker)
    assert type(err) is cls
    assert error_summary(err) == summary
    assert friendly_message(err) == dict(FRIENDLY)[cls]
    assert FAKE_KEY not in friendly_message(err) + error_summary(err)


def test_a_timeout_is_not_reported_as_a_plain_connection_error(offline):
    err = failure(offline, "[fault:stall]", timeout=httpx.Timeout(5.0, read=0.2))
    assert isinstance(err, openai.APITimeoutError)
    assert friendly_message(err) == dict(FRIENDLY)[openai.APITimeoutError]
    assert friendly_message(err) != dict(FRIENDLY)[openai.APIConnectionError]


def test_table_lists_every_subclass_before_its_parent():
    classes = [cls for cls, _ in FRIENDLY]
    for i, cls in enumerate(classes):
        for later in classes[i + 1:]:
            assert not issubclass(later, cls), f"{later.__name__} is shadowed by {cls.__name__}"


def test_anything_else_gets_the_fallback():
    fallback = "Something unexpected went wrong while asking the model."
    assert friendly_message(ValueError("x")) == fallback
    assert error_summary(ValueError("x")) == "ValueError"


# -- one mapping for every surface: describe_failure, scrub ----------------------------------------
def test_one_record_says_what_every_surface_shows(offline):
    err = failure(offline, "[fault:429]")
    shown = describe_failure(err, secret=FAKE_KEY, read_timeout=5)
    assert (shown.status, shown.type, shown.upstream_status) == (429, "rate_limit_reached_error",
                                                                  429)
    assert shown.friendly == friendly_message(err) == dict(FRIENDLY)[openai.RateLimitError]
    assert shown.detail == describe_error(err) and shown.detail.startswith("429 RateLimitError")
    assert FAKE_KEY not in repr(shown)


def test_a_status_the_browser_did_not_cause_becomes_502(offline):
    shown = describe_failure(failure(offline, "[fault:401]"))
    assert (shown.status, shown.upstream_status) == (502, 401)
    assert shown.message.startswith("The provider refused the relay's API key (401)")


def test_a_stall_is_a_504_that_names_the_read_timeout(offline):
    err = failure(offline, "[fault:stall]", timeout=httpx.Timeout(5.0, read=0.2))
    shown = describe_failure(err, read_timeout=0.2)
    assert (shown.status, shown.type) == (504, "upstream_timeout")
    assert "0.2 s" in shown.message


def test_scrub_masks_the_secret_and_cuts_anything_key_shaped():
    assert scrub(f"echo {FAKE_KEY}!", FAKE_KEY) == "echo sk-…ef!"
    assert scrub("other key sk-abcdefghijklmnop here") == "other key sk-abc… here"
    assert scrub("no key at all", FAKE_KEY) == "no key at all"
