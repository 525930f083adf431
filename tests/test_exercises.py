"""Exercise self-checks: ✅ with the solution, "not yet" with the notebooks' own starter code.

The starter code is read from the committed notebooks (the exercise cells are self-contained),
so these tests fail if a notebook's starter and its check drift apart.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import openai
import pytest

from helpers import collect
from helpers.exercises import (
    check_lesson1_ex1,
    check_lesson1_ex2,
    check_lesson2_ex1,
    check_lesson2_ex2,
    check_lesson3_ex1,
    check_lesson3_ex2,
    check_lesson4_ex1,
    check_lesson4_ex2,
    check_lesson5_ex1,
    check_lesson5_ex2,
    check_lesson6_ex1,
    check_lesson6_ex2,
    check_lesson7_ex1,
    check_lesson7_ex2,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {
    1: ROOT / "notebooks" / "01_configure_the_sdk.ipynb",
    2: ROOT / "notebooks" / "02_streaming_chunks.ipynb",
    3: ROOT / "notebooks" / "03_live_widgets.ipynb",
    4: ROOT / "notebooks" / "04_relay_from_scratch.ipynb",
    5: ROOT / "notebooks" / "05_hardened_relay.ipynb",
    6: ROOT / "notebooks" / "06_providers_and_quirks.ipynb",
    7: ROOT / "notebooks" / "07_errors_and_resilience.ipynb",
}


def solution(lesson: int) -> ModuleType:
    """Import solutions/lessonN.py (a folder of the project, not an installed package)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"solutions.lesson{lesson}")


def exercise_cells(lesson: int) -> list[str]:
    cells = json.loads(NOTEBOOKS[lesson].read_text())["cells"]
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and f"check_lesson{lesson}_ex" in "".join(c["source"])]


def verdict(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip()
    assert "\n" not in out, f"a check prints one line, got: {out!r}"
    return out


def client_for(provider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key="any-key", max_retries=0)


@pytest.mark.parametrize("lesson", sorted(NOTEBOOKS))
def test_committed_starter_cells_say_not_yet_and_do_not_raise(lesson, capsys):
    cells = exercise_cells(lesson)
    assert 1 <= len(cells) <= 2, f"lesson {lesson}: one or two exercise cells"
    namespace: dict = {}  # one kernel: the second cell uses the first cell's import
    for source in cells:
        exec(compile(source, f"lesson{lesson}-exercise", "exec"), namespace)
        out = verdict(capsys)
        assert out.startswith("not yet: "), out
        assert "✅" not in out


def test_lesson1_solutions_pass(offline, capsys):
    answers = solution(1)
    check_lesson1_ex1(answers.short_answer(client_for(offline), "moonshot-v1-8k"))
    assert verdict(capsys).startswith("✅")
    check_lesson1_ex2(answers.global_config())
    assert verdict(capsys).startswith("✅")


def test_lesson1_hints_name_what_is_wrong(offline, capsys):
    full = client_for(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": "What is 1+1?"}])
    check_lesson1_ex1(full)
    assert verdict(capsys) == ("not yet: finish_reason is 'stop': pass max_tokens=10 so the "
                               "answer is cut short")
    cn = solution(1).load_config(env={"MOONSHOT_API_KEY": "demo-key-0123456789"})
    check_lesson1_ex2(cn)
    assert "set LLM_PROVIDER to the global Moonshot preset" in verdict(capsys)


def test_lesson2_solutions_pass(offline, capsys):
    answers = solution(2)
    check_lesson2_ex1(answers.first_words)
    assert verdict(capsys).startswith("✅")
    check_lesson2_ex2(*answers.usage_both_ways(client_for(offline)))
    assert verdict(capsys).startswith("✅")


def test_lesson2_first_words_that_forgets_to_close_is_told(capsys):
    def first_words(stream, n):
        pieces = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == n:
                    return pieces
        return pieces

    check_lesson2_ex1(first_words)
    assert "the stream is still open" in verdict(capsys)


def test_lesson2_usage_swapped_is_told(offline, capsys):
    plain, counted = solution(2).usage_both_ways(client_for(offline))
    check_lesson2_ex2(counted, plain)
    assert verdict(capsys).startswith("not yet: `plain` has usage")


def test_lesson3_solutions_pass(capsys):
    answers = solution(3)
    check_lesson3_ex1(answers.stop_after)
    assert verdict(capsys).startswith("✅ stopped after at least 20 tokens, and the provider saw")
    check_lesson3_ex2(answers.ShortMemoryChat)
    assert verdict(capsys).startswith("✅ 3 messages sent (")


def test_lesson3_stopping_before_any_token_is_told(capsys):
    from helpers import StreamView

    def stop_after(request, n):
        view = StreamView(widgets=True)
        view.stop()  # too early: nothing has arrived yet
        view.start(request)
        view.wait()
        return view

    check_lesson3_ex1(stop_after)
    assert verdict(capsys) == ("not yet: only 0 tokens had arrived at the stop: wait for 20 "
                               "first (view.wait(tokens=n))")


def test_lesson3_a_chat_without_the_question_is_told(capsys):
    from helpers import ChatUI

    class ShortMemoryChat(ChatUI):
        def messages_for(self, question):
            return self.history[-2:]

    check_lesson3_ex2(ShortMemoryChat)
    assert verdict(capsys) == ("not yet: only 0 of 3 questions got an answer: messages_for must "
                               "end with the question itself")


def test_lesson4_solutions_pass(capsys):
    answers = solution(4)
    check_lesson4_ex1(answers.make_relay)
    assert verdict(capsys).startswith("✅ two answers streamed, each ending with done")
    check_lesson4_ex2(answers.split_events)
    assert verdict(capsys).startswith("✅ the same four events however the stream was cut")


def test_lesson4_the_lessons_own_relay_is_told_to_say_how_it_ended(capsys):
    """Section 1's relay as it is: its `done` event carries {}."""
    import json as _json

    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    def make_relay(aclient, model):
        app = FastAPI()

        @app.post("/chat")
        async def chat(body: dict):
            async def events():
                stream = await aclient.chat.completions.create(
                    model=model, stream=True,
                    messages=[{"role": "user", "content": body["question"]}])
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        data = _json.dumps({"content": chunk.choices[0].delta.content})
                        yield f"event: delta\ndata: {data}\n\n"
                yield "event: done\ndata: {}\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return app

    check_lesson4_ex1(make_relay)
    assert verdict(capsys).startswith("not yet: `done` carried {}")


def test_lesson4_a_splitter_that_drops_the_tail_is_told(capsys):
    def split_events(buffer):
        events, _rest = solution(4).split_events(buffer)
        return events, ""  # forgets the incomplete tail

    check_lesson4_ex2(split_events)
    assert verdict(capsys).startswith("not yet: read in pieces of 1 characters")


def test_lesson5_solutions_pass(capsys):
    answers = solution(5)
    check_lesson5_ex1(answers.relay_answer)
    assert verdict(capsys).startswith("✅ 74 pieces of text, and usage")
    check_lesson5_ex2(answers.ask_checked)
    assert verdict(capsys).startswith("✅ finished is True only after `done`")


def test_lesson5_forgetting_the_usage_event_is_told(capsys):
    def relay_answer(url, question):
        return solution(5).relay_answer(url, question)[0], None

    check_lesson5_ex1(relay_answer)
    assert verdict(capsys).startswith("not yet: usage should be the data of the `usage` event")


def test_lesson5_the_raw_route_cannot_tell_a_cut_answer(capsys):
    import httpx

    def ask_checked(url, question):
        raw = httpx.post(url + "chatbot/llm/chatstream", json={"question": question})
        return raw.text, raw.status_code == 200  # 200 and a text that just stops

    check_lesson5_ex2(ask_checked)
    assert verdict(capsys) == ("not yet: the provider failed midway: the relay sent an `error` "
                               "event, so finished should be False, got True")


def test_lesson6_solutions_pass(capsys):
    answers = solution(6)
    check_lesson6_ex1(answers.ask_with_usage)
    assert verdict(capsys).startswith("✅")
    check_lesson6_ex2(answers.split_thinking)
    assert verdict(capsys).startswith("✅")


def test_lesson6_forgetting_include_usage_is_told(capsys):
    def ask_with_usage(client, model, question):
        result = collect(client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], stream=True))
        return result.text, result.usage.total_tokens if result.usage else None

    check_lesson6_ex1(ask_with_usage)
    assert verdict(capsys).startswith("not yet: qwen-plus gave no total")


def test_lesson6_reading_usage_only_from_empty_choices_chunks_is_told(capsys):
    def ask_with_usage(client, model, question):
        text, total = "", None
        for chunk in client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": question}], stream=True,
                stream_options={"include_usage": True}):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                total = (chunk.choices[0].model_extra or {}).get("usage", {}).get("total_tokens")
            elif chunk.usage:
                total = chunk.usage.total_tokens
        return text, total

    check_lesson6_ex1(ask_with_usage)
    assert verdict(capsys).startswith("not yet: deepseek-chat gave no total: its usage is at")


def test_lesson6_ex1_checks_every_model_the_lesson_streams(capsys):
    """It said "every model" but checked four of five: reasoning mixed into the text passed."""
    import re

    from helpers.exercises.lesson6 import _FLAVOURS
    from helpers.providers import FAMILIES, MODELS

    code = "".join("".join(c["source"]) for c in json.loads(NOTEBOOKS[6].read_text())["cells"]
                   if c["cell_type"] == "code")
    named = set(re.findall(r'"([^"]+)"', code)) & set(MODELS)
    assert named <= set(_FLAVOURS), named - set(_FLAVOURS)
    assert {MODELS[m].family for m in _FLAVOURS} == set(FAMILIES)

    def ask_with_usage(client, model, question):
        result = collect(client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], stream=True,
            stream_options={"include_usage": True}))
        return result.reasoning + result.text, result.usage.total_tokens

    check_lesson6_ex1(ask_with_usage)
    assert verdict(capsys).startswith("not yet: deepseek-reasoner: the text differs")


def test_lesson6_mixing_reasoning_into_the_answer_is_told(capsys):
    def split_thinking(stream):
        result = collect(stream)
        return "", result.reasoning + result.text

    check_lesson6_ex2(split_thinking)
    assert verdict(capsys).startswith("not yet: deepseek-reasoner: the answer differs")


def test_lesson7_solutions_pass(capsys):
    answers = solution(7)
    check_lesson7_ex1(answers.should_retry)
    assert verdict(capsys).startswith("✅")
    check_lesson7_ex2(answers.ask_keep_partial)
    assert verdict(capsys).startswith("✅")


def test_lesson7_retrying_everything_is_told(capsys):
    check_lesson7_ex1(lambda err: True)
    assert verdict(capsys) == (
        "not yet: should_retry(RateLimitError) is True, expected False: a 429 whose type is "
        "Moonshot's exceeded_current_quota_error is an empty account: read err.body[\"type\"]")


def test_lesson7_retrying_by_status_alone_is_told_about_the_empty_account(capsys):
    def should_retry(err):  # the status says 429 for both: only the type tells them apart
        if isinstance(err, openai.APIStatusError):
            return err.status_code in (408, 409, 429) or err.status_code >= 500
        return isinstance(err, openai.APIConnectionError)

    check_lesson7_ex1(should_retry)
    assert verdict(capsys).startswith("not yet: should_retry(RateLimitError) is True, expected "
                                      "False: a 429 whose type is Moonshot's")


def test_lesson7_the_right_answer_that_forgets_400_is_still_told(capsys):
    def should_retry(err):
        return solution(7).should_retry(err) or getattr(err, "status_code", None) == 400

    check_lesson7_ex1(should_retry)
    assert verdict(capsys) == ("not yet: should_retry(BadRequestError) is True, expected False: "
                               "the same request fails the same way")


def test_lesson7_losing_the_partial_text_is_told(capsys):
    def ask_keep_partial(client, model, messages):
        try:
            return collect(client.chat.completions.create(
                model=model, messages=messages, stream=True)).text, None
        except openai.APIError as err:
            return "", err

    check_lesson7_ex2(ask_keep_partial)
    assert verdict(capsys).startswith("not yet: the text so far should be kept")


def test_a_check_reports_the_learners_exception_instead_of_raising(capsys):
    def broken(*args):
        raise KeyError("oops")

    check_lesson7_ex1(broken)
    first, *where = capsys.readouterr().out.strip().split("\n")
    assert first == "not yet: your code raised KeyError: 'oops'"
    line = broken.__code__.co_firstlineno + 1
    assert where == [f"    test_exercises.py, line {line}, in broken: raise KeyError(\"oops\")"], (
        "the learner's own frame, and only it")
