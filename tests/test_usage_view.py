"""The teacher's usage view (issue 24, finding 3): helpers/relay/usage.py, the store's usage
records (SQLite and a real Redis), ``/usage.json`` for the teacher's token only, and the
``/usage`` page in Chromium.

Counts are checked against the offline provider's own counters: the streams it served and
the usage it reported for each.
"""

# ruff: noqa: F811  (store_url: a fixture imported from tests/redis_server.py)

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FAKE_KEY, sse_events, stop_process
from redis_server import store_url  # noqa: F401  (a fixture)
from relay_process import RelayProcess

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.relay.access import new_token
from helpers.relay.limits import Limits
from helpers.relay.store import SQLiteStore, open_store
from helpers.relay.toolstream import MATH_TOOLS
from helpers.relay.usage import usage_day
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
WAIT_MS = 20_000
TOKENS = {"teacher": new_token(), "anna": new_token(), "ben": new_token()}
QUESTION = "What is a prime number?"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def ask(url: str, name: str, question: str = QUESTION) -> httpx.Response:
    return httpx.post(url + "api/chat/stream", json={"question": question}, timeout=30,
                      headers=bearer(name))


def usage(url: str, name: str = "teacher") -> httpx.Response:
    return httpx.get(url + "usage.json", headers=bearer(name), timeout=30)


def reported(response: httpx.Response) -> dict:
    """The usage event a student's answer carried."""
    return next(data for name, data in sse_events(response.text) if name == "usage")


def rows(data: dict) -> dict[str, dict]:
    return {row["name"]: row for row in data["students"]}


@pytest.fixture
def classroom(offline: OfflineProvider, store_url: str) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    relay = start_relay(config, jupyter=False, name="relay-usage", token=dict(TOKENS),
                        limits=Limits(requests_per_minute=2), store=store_url)
    yield relay
    relay.stop()


# -- the store's records ---------------------------------------------------------------------
def test_the_store_sums_counts_and_keeps_the_latest_activity(store_url: str) -> None:
    async def run() -> tuple[dict, dict, dict]:
        store = open_store(store_url)
        try:
            await store.add_usage("token:anna", "2026-10-01", {"requests": 1, "last": 1.0})
            assert await store.usage("2026-10-01") == {"token:anna": {"requests": 1, "last": 1}}
            await store.add_usage("token:anna", "2026-12-06",
                                  {"requests": 1, "total_tokens": 30, "last": 200.0})
            await store.add_usage("token:anna", "2026-12-06",
                                  {"requests": 1, "refused:relay_rate_limit": 1, "last": 100.0})
            await store.add_usage("token:ben", "2026-12-06", {"cost": 0.25, "last": 50.0})
            await store.add_usage("token:anna", "2026-12-07", {"requests": 1, "last": 300.0})
            if store_url.startswith("sqlite"):  # 31 days kept (Redis: the keys expire)
                assert await store.usage("2026-10-01") == {}
            return (await store.usage("2026-12-06"), await store.usage("2026-12-07"),
                    await store.usage("2026-12-08"))
        finally:
            await store.close()

    day, next_day, empty = asyncio.run(run())
    assert day == {"token:anna": {"requests": 2, "total_tokens": 30, "last": 200.0,
                                  "refused:relay_rate_limit": 1},
                   "token:ben": {"cost": 0.25, "last": 50.0}}
    assert next_day == {"token:anna": {"requests": 1, "last": 300.0}} and empty == {}


# -- the view: what it lists, and who may read it --------------------------------------------
def test_the_teacher_sees_each_student_and_only_the_teacher(classroom: Relay,
                                                             offline: OfflineProvider) -> None:
    """Two students from one address: anna is limited while ben is served; the view counts
    both as the provider did."""
    answers = [ask(classroom.url, "anna") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    anna_usage = [r["usage"] for r in offline.stats()["recent"]]
    ben = ask(classroom.url, "ben", "What is the Pythagorean theorem?")
    assert ben.status_code == 200
    stats = offline.stats()
    assert stats["streams"] == 3
    ben_usage = stats["recent"][-1]["usage"]

    data = usage(classroom.url).json()
    assert data["day"] == usage_day() and data["offline"] is True
    assert data["model"] == "moonshot-v1-8k" and data["currency"]
    seen = rows(data)
    assert list(seen) == ["teacher", "anna", "ben"]  # every roster name, zeros included
    anna, ben_row, teacher = seen["anna"], seen["ben"], seen["teacher"]
    assert anna["requests"] == 2 and anna["refusals"] == {"relay_rate_limit": 1}
    assert anna["refused"] == 1 and anna["last_activity"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert anna[key] == sum(u[key] for u in anna_usage) > 0, key
        assert ben_row[key] == ben_usage[key] == reported(ben)[key], key
    assert anna["total_tokens"] == sum(reported(a)["total_tokens"] for a in answers[:2])
    assert anna["cost"] == pytest.approx(sum(reported(a)["cost"]["amount"]
                                             for a in answers[:2]))
    assert ben_row["requests"] == 1 and ben_row["refusals"] == {}
    assert teacher["requests"] == 0 and teacher["last_activity"] is None
    assert data["totals"]["requests"] == 3 == stats["streams"]
    assert data["totals"]["refused"] == 1

    student = usage(classroom.url, "anna")
    assert student.status_code == 403
    assert student.json() == {"error": {"type": "usage_teacher_only", "message": (
        "Only the teacher's token (the line named 'teacher' in the tokens file) may read "
        "this relay's usage.")}}
    assert httpx.get(classroom.url + "usage.json", timeout=30).status_code == 401
    wrong = httpx.get(classroom.url + "usage.json", timeout=30,
                      headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "relay_token_invalid"
    assert usage(classroom.url).json()["totals"]["requests"] == 3  # reading counts nothing
    assert offline.stats()["streams"] == 3


def test_usage_is_recorded_without_any_limit_and_not_without_student_tokens(
        offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-usage-free", token=dict(TOKENS)) as relay:
        assert [ask(relay.url, "ben").status_code for _ in range(3)] == [200, 200, 200]
        assert rows(usage(relay.url).json())["ben"]["requests"] == 3
    with start_relay(config, jupyter=False, name="relay-usage-shared",
                     token=TOKENS["anna"]) as relay:  # one shared token: nobody to name
        assert ask(relay.url, "anna").status_code == 200
        assert usage(relay.url, "anna").status_code == 404
        assert relay.app.state.limiter.store.path is None  # the store never made its file
    assert offline.stats()["streams"] == 4


def test_a_tool_round_refused_mid_answer_is_a_refusal_and_its_usage_counts(
        offline: OfflineProvider) -> None:
    """A tool loop's second round the budget cannot pay for ends the answer with an error
    event (tests/test_hostile_budget.py); the view counts the question, its first round's
    usage and the refusal."""
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-usage-tools", token=dict(TOKENS),
                     tools=MATH_TOOLS, limits=Limits(daily_tokens=300)) as relay:
        answer = httpx.post(relay.url + "api/chat/stream", headers=bearer("anna"), timeout=60,
                            json={"question": "Please calculate 3*4", "max_tokens": 20})
        assert answer.status_code == 200
        got = sse_events(answer.text)
        assert got[-1][0] == "error" and got[-1][1]["type"] == "relay_budget_limit"
        anna = rows(usage(relay.url).json())["anna"]
    assert offline.stats()["chat_requests"] == 1  # the refused round never left the relay
    assert anna["requests"] == 1 and anna["refusals"] == {"relay_budget_limit": 1}
    assert anna["total_tokens"] == reported(answer)["total_tokens"] > 0


class _NoRecords(SQLiteStore):
    async def add_usage(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")


def test_a_record_that_fails_is_logged_and_the_answer_is_whole(
        offline: OfflineProvider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "helpers.relay")
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-usage-broken", token=dict(TOKENS),
                     store=_NoRecords()) as relay:
        answer = ask(relay.url, "anna")
        assert answer.status_code == 200
        assert [name for name, _ in sse_events(answer.text)][-2:] == ["usage", "done"]
    assert "usage not recorded (OSError)" in caplog.text


def test_usage_from_every_worker_is_in_one_view(tmp_path: Path,
                                                offline: OfflineProvider) -> None:
    roster = tmp_path / "class.txt"
    roster.write_text("".join(f"{name} {token}\n" for name, token in TOKENS.items()))
    relay = RelayProcess("--tokens", str(roster), "--workers", "2", "--store",
                         f"sqlite:///{tmp_path / 'relay.sqlite3'}", "--requests-per-minute",
                         "4", "--base-url", offline.base_url, "--api-key", FAKE_KEY)
    try:
        statuses = [ask(relay.url, "anna").status_code for _ in range(6)]  # new connections
        assert statuses == [200] * 4 + [429] * 2
        views = [rows(usage(relay.url).json())["anna"] for _ in range(8)]  # any worker
        assert {(v["requests"], v["refused"]) for v in views} == {(4, 2)}
        assert views[0]["total_tokens"] == sum(r["usage"]["total_tokens"]
                                               for r in offline.stats()["recent"])
        assert offline.stats()["streams"] == 4
    finally:
        stop_process(relay.proc, grace=30)
        relay.stop()


# -- the page, in Chromium -------------------------------------------------------------------
def test_the_usage_page_is_static_and_runs_only_its_own_scripts(classroom: Relay) -> None:
    page = httpx.get(classroom.url + "usage", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="static/' in attrs and not body.strip()
                           for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline handlers
    assert not any(token in page.text for token in TOKENS.values())


@pytest.mark.browser
def test_the_usage_page_shows_the_teacher_each_student(browser: Any, classroom: Relay,
                                                        offline: OfflineProvider) -> None:
    assert [ask(classroom.url, "anna").status_code for _ in range(3)] == [200, 200, 429]
    assert ask(classroom.url, "ben").status_code == 200
    context = browser.new_context()
    problems: list[str] = []
    try:
        tab = context.new_page()
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.goto(f"{classroom.url}usage#token={TOKENS['teacher']}")
        tab.wait_for_selector('body[data-state="ready"]', timeout=WAIT_MS)
        assert tab.url == classroom.url + "usage"  # the token left the address bar
        cells = {name: tab.locator(f'#rows tr[data-name="{name}"] td').all_text_contents()
                 for name in TOKENS}
        anna = rows(usage(classroom.url).json())["anna"]
        assert cells["anna"][:5] == ["anna", "2", str(anna["prompt_tokens"]),
                                     str(anna["completion_tokens"]), str(anna["total_tokens"])]
        assert cells["anna"][6] == "rate 1" and cells["ben"][1] == "1"
        assert cells["teacher"][1] == "0" and cells["teacher"][7] == "not yet"
        assert "offline model" in tab.text_content("#summary")
        assert tab.locator("#totals td").nth(1).text_content() == "3"

        student = context.new_page()  # a student's link: 403, said on the page
        student.goto(f"{classroom.url}usage#token={TOKENS['ben']}")
        student.wait_for_selector('body[data-state="error"]', timeout=WAIT_MS)
        shown = student.text_content("#problem")
        assert "HTTP 403 usage_teacher_only" in shown, shown
        assert student.locator("#usage").is_hidden()
        assert problems == []
    finally:
        context.close()
    assert offline.stats()["streams"] == 3
