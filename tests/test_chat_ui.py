"""The chat UI: history across turns, Send while busy, Clear, stop and failure bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from conftest import FAKE_KEY

from helpers.offline import OfflineProvider
from helpers.views.chat import ChatUI
from helpers.views.meter import WireMeter

MODEL = "moonshot-v1-8k"
PYTHAGORAS = "What is the Pythagorean theorem?"


@pytest.fixture
def client(offline: OfflineProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def meter() -> Iterator[WireMeter]:
    with WireMeter() as m:
        yield m


def test_history_carries_across_turns(client, meter) -> None:
    chat = ChatUI(client, MODEL, system="You are a math teacher's assistant.", widgets=True)
    chat.ask(PYTHAGORAS, wait=False)
    second = chat.ask("What did I just ask?", wait=False)  # waits for the first answer first
    chat.wait(30)
    assert second is not None
    assert second.text == f'Your previous question was: "{PYTHAGORAS}"'
    assert [m["role"] for m in chat.history] == ["user", "assistant", "user", "assistant"]
    assert chat.messages_for("next")[0]["role"] == "system"
    assert meter.shown_text(chat.root) == chat.views[0].text + second.text
    questions = [v["value"] for v in meter.models.values() if "llm-chat-question" in
                 v.get("_dom_classes", ())]
    assert questions == [f"<b>You:</b> {PYTHAGORAS}", "<b>You:</b> What did I just ask?"]


def test_send_is_disabled_while_an_answer_streams(client, meter, offline) -> None:
    chat = ChatUI(client, MODEL, widgets=True)
    chat.input.value = f"[hold] {PYTHAGORAS}"
    meter.click(chat.send_button)
    offline.wait_for(lambda s: s["held"] == 1, timeout=10)
    assert meter.state(chat.send_button)["disabled"] is True
    assert chat.input.value == ""
    meter.click(chat.send_button)  # ignored while busy (the box is empty anyway)
    chat.input.value = "another question"
    meter.click(chat.send_button)
    assert len(chat.views) == 1
    offline.release()
    chat.wait(30)
    assert meter.state(chat.send_button)["disabled"] is False
    assert chat.history[-1]["role"] == "assistant"


def test_clear_forgets_the_conversation(client, meter) -> None:
    chat = ChatUI(client, MODEL, widgets=True)
    chat.ask(PYTHAGORAS, wait=False)
    chat.wait(30)
    log = meter.find(chat.root, "llm-chat-log")
    assert meter.shown_text(log)
    meter.click(chat.clear_button)
    assert chat.history == [] and meter.shown_text(log) == ""
    again = chat.ask("What did I just ask?", wait=False)
    chat.wait(30)
    assert again is not None and again.text == "This is your first question."


def test_a_stopped_answer_keeps_its_text_and_a_failed_one_is_dropped(client, meter,
                                                                     offline) -> None:
    chat = ChatUI(client, MODEL, widgets=True)
    view = chat.ask("[tokens:3000][delay:5]", wait=False)
    assert view is not None
    view.wait(30, tokens=10)
    chat.stop()
    chat.wait(30)
    assert view.state == "stopped"
    assert chat.history[-1] == {"role": "assistant", "content": view.text}
    failed = chat.ask(f"[fault:401] {PYTHAGORAS}", wait=False)
    chat.wait(30)
    assert failed is not None and failed.state == "error"
    assert len(chat.history) == 2  # the stopped turn stays, the failed one is gone


def test_plain_text_chat_prints_each_turn(client, capsys) -> None:
    chat = ChatUI(client, MODEL, widgets=False)
    chat.ask(PYTHAGORAS)
    chat.ask("What did I just ask?")
    printed = capsys.readouterr().out
    assert f"You: What did I just ask?\nAssistant: Your previous question was: \"{PYTHAGORAS}\"" \
        in printed
    assert printed.count("── done · ") == 2


def test_a_reasoning_model_shows_its_thinking_but_history_keeps_only_the_answer(
        client, meter) -> None:
    from helpers.offline.replies import compose_reply

    reply = compose_reply([{"role": "user", "content": PYTHAGORAS}], reasoning=True)
    chat = ChatUI(client, "deepseek-reasoner", widgets=True)
    view = chat.ask(PYTHAGORAS, wait=False)
    chat.wait(30)
    assert view is not None and view.reasoning == reply.reasoning
    assert chat.history == [{"role": "user", "content": PYTHAGORAS},
                            {"role": "assistant", "content": reply.text}]
    thinking = meter.find(view.root, "llm-stream-thinking-box")
    assert meter.shown_text(thinking) == reply.reasoning
    assert meter.shown_text(chat.root) == reply.reasoning + reply.text  # thinking, then answer


def test_each_answer_shows_its_cost_and_the_log_the_conversations_total(client, meter,
                                                                         offline) -> None:
    import html

    from helpers.money.cost import call_cost

    chat = ChatUI(client, MODEL, widgets=True)
    total = meter.find(chat.root, "llm-chat-total")
    assert meter.state(total)["value"] == ""  # nothing spent yet
    chat.ask(PYTHAGORAS, wait=False)
    chat.ask("What did I just ask?", wait=False)
    chat.wait(30)
    reported = [r["usage"] for r in offline.stats()["recent"]]  # what the provider sent
    costs = [call_cost(usage, MODEL) for usage in reported]
    assert len(costs) == 2 and all(costs) and reported[1]["prompt_tokens"] > \
        reported[0]["prompt_tokens"]  # the second request pays again for the first answer
    for view, cost in zip(chat.views, costs, strict=True):
        status = meter.state(meter.find(view.root, "llm-stream-status"))["value"]
        assert f"· {cost} (offline counts × real price)</span>" in html.unescape(status)
    both = costs[0] + costs[1]
    assert chat.cost == both
    assert html.unescape(meter.state(total)["value"]) == (
        f"conversation so far: 2 answers · {both} (offline counts × real price)")
    meter.click(chat.clear_button)
    assert meter.state(total)["value"] == "" and chat.cost is None


def test_a_model_without_a_price_gives_no_total(client, meter) -> None:
    chat = ChatUI(client, "offline-tiny", widgets=True)
    chat.ask("Hi", wait=False)
    chat.wait(30)
    assert chat.views[0].result.usage is not None and chat.cost is None
    assert meter.state(meter.find(chat.root, "llm-chat-total"))["value"] == ""
