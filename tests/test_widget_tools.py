"""The live view shows a tool loop: each call's name, its arguments growing, its result, the answer.

Everything is read through what the front end sees (``WireMeter``: the widget states and the
messages in the order they were sent), never through the view's private attributes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import openai
import pytest
from conftest import FAKE_KEY, wait_until
from test_tools import CALC, add, multiply

from helpers.offline import OfflineProvider
from helpers.tools.loop import ToolLoop, iter_tool_loop, run_tools
from helpers.views.meter import SimClock, WireMeter, at_simulated_speed
from helpers.views.show import StreamView, show_stream

MODEL = "moonshot-v1-8k"
TOOLS = [CALC, add, multiply]  # the calculator and two small tools, as tests/test_tools.py has them


@pytest.fixture
def client(offline: OfflineProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0) as c:
        yield c


def loop(client: openai.OpenAI, question: str, **kw) -> ToolLoop:
    return iter_tool_loop(client, model=MODEL, tools=TOOLS,
                          messages=[{"role": "user", "content": question}], **kw)


def body_parts(meter: WireMeter, view: StreamView) -> list[str]:
    body = meter.state(meter.find(view.root, "llm-stream-body"))
    return [str(child).removeprefix("IPY_MODEL_") for child in body["children"]]


def tool_boxes(meter: WireMeter, view: StreamView) -> list[dict[str, str]]:
    """Each tool part a front end shows, in order: its name, arguments and result text."""
    boxes = []
    for part in body_parts(meter, view):
        if "llm-stream-tool" in meter.state(part).get("_dom_classes", ()):
            boxes.append({key: meter.shown_text(meter.find(part, f"llm-stream-tool-{key}"))
                          for key in ("name", "arguments", "result")})
    return boxes


def outputs_sent(meter: WireMeter, model_id: str) -> list[tuple[int, str]]:
    """(message number, text) of every update of an Output widget's outputs, in order."""
    sent = []
    for n, (kind, content) in enumerate(meter.messages):
        state = (content.get("data") or {}).get("state", {})
        if kind == "comm_msg" and content["comm_id"] == model_id and "outputs" in state:
            sent.append((n, "".join(o["data"].get("text/plain", "") for o in state["outputs"])))
    return sent


def test_a_call_shows_its_name_and_arguments_then_its_result_then_the_answer(
        client, offline: OfflineProvider) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(lambda: loop(client, 'calculate "2*(3+4)^2"'))
        view.wait(30)
    assert view.state == "done", view.error
    assert offline.stats()["completed"] == 2  # the call, then the answer from its result
    assert tool_boxes(meter, view) == [{"name": "🔧 **calculate**",
                                        "arguments": '{"expression": "2*(3+4)^2"}',
                                        "result": "→ 98"}]
    preamble = "Let me call calculate."  # Moonshot streams a sentence before its calls
    after = view.text.removeprefix(preamble)
    assert view.text.startswith(preamble) and "98" in after
    assert meter.shown_text(view.root) == (  # in order: text, the call, its result, answer
        f'{preamble}🔧 **calculate**{{"expression": "2*(3+4)^2"}}→ 98{after}')
    usage = view.result.usage  # summed over the two requests, as run_tools sums them
    again = run_tools(client, model=MODEL, tools=TOOLS,
                      messages=[{"role": "user", "content": 'calculate "2*(3+4)^2"'}])
    assert usage is not None and again.rounds == 2
    assert usage.model_dump(include=set(again.usage)) == again.usage


def test_the_arguments_grow_live_and_the_answer_comes_after_the_result(client) -> None:
    with WireMeter() as meter:
        clock = SimClock()  # one event every 0.1 simulated seconds: a redraw each time
        view = StreamView(widgets=True, clock=clock)
        view.consume(at_simulated_speed(loop(client, "add 12345 and 67890"), clock, 10))
    arguments = meter.find(view.root, "llm-stream-tool-arguments")
    grown = [text for _, text in outputs_sent(meter, arguments)]
    assert len(grown) >= 5 and grown[-1] == '{"a": 12345, "b": 67890}'
    assert all(b.startswith(a) and b != a for a, b in zip(grown, grown[1:], strict=False))
    (last_argument, _), = outputs_sent(meter, arguments)[-1:]
    (result_at, result), = outputs_sent(meter, meter.find(view.root, "llm-stream-tool-result"))
    assert result == "→ 80235" and last_argument < result_at
    after = body_parts(meter, view)[-1]  # the answer's tail, after the call
    answer_at = [n for n, (kind, content) in enumerate(meter.messages)
                 if content.get("comm_id") == after and kind == "comm_msg"]
    assert answer_at and min(answer_at) > result_at
    assert "80235" in meter.shown_text(after)


def test_parallel_calls_each_get_a_part_in_order(client, offline: OfflineProvider) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(
            lambda: loop(client, "add 2 and 3, then multiply 4 and 5"))
        view.wait(30)
    boxes = tool_boxes(meter, view)
    assert [(b["name"], json.loads(b["arguments"]), b["result"]) for b in boxes] == [
        ("🔧 **add**", {"a": 2, "b": 3}, "→ 5"), ("🔧 **multiply**", {"a": 4, "b": 5}, "→ 20")]
    assert offline.stats()["completed"] == 2


def test_headless_show_stream_prints_each_call_with_its_result_once(client, capsys) -> None:
    with WireMeter():
        view = show_stream(lambda: loop(client, "add 2 and 3, then multiply 4 and 5"),
                           widgets=True, wait=True)
    printed = capsys.readouterr().out
    calls = ('🔧 add {"a": 2, "b": 3}\n→ 5\n🔧 multiply {"a": 4, "b": 5}\n→ 20\n')
    assert view.done and printed.count(calls) == 1
    assert f"Let me call add and multiply.\n{calls}{view.text.split('.', 1)[1]}\n── done · " \
        in printed


def test_plain_text_prints_the_calls_as_they_come(client) -> None:
    out = io.StringIO()
    view = StreamView(widgets=False, out=out)
    view.consume(lambda: loop(client, 'calculate "6*7"'))
    assert out.getvalue().startswith(
        'Let me call calculate.\n🔧 calculate {"expression": "6*7"}\n→ calculate: 42\n')
    assert out.getvalue().endswith(f"{view.text.split('.', 1)[1]}\n── {view.status()}\n")


def test_stop_during_a_tool_call_closes_the_upstream_even_while_it_is_silent(
        client, offline: OfflineProvider) -> None:
    with WireMeter() as meter:  # [hold]: the call is sent, then the stream goes silent
        view = StreamView(widgets=True).start(lambda: loop(client, '[hold] calculate "1+1"'))
        wait_until(lambda: shown_arguments(meter, view) == '{"expression": "1+1"}')
        assert offline.stats()["open_streams"] == 1  # held before its last chunk: silent
        meter.click(meter.find(view.root, "llm-stream-stop"))
        view.wait(10)
    offline.wait_for(lambda s: s["disconnects"] == 1 and s["open_streams"] == 0, timeout=10)
    assert view.state == "stopped"
    assert offline.stats()["requests"] == 1  # no tool ran, no second request
    assert tool_boxes(meter, view)[0]["result"] == ""


def shown_arguments(meter: WireMeter, view: StreamView) -> str | None:
    try:
        return meter.shown_text(meter.find(view.root, "llm-stream-tool-arguments"))
    except (LookupError, KeyError):
        return None


def test_a_loop_that_does_not_converge_shows_why_it_stopped(client, offline) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(lambda: loop(client, "add 1 and 2", max_rounds=1))
        view.wait(30)
    assert view.state == "error" and "still asked for tools" in (view.error or "")
    status = meter.state(meter.find(view.root, "llm-stream-status"))["value"]
    assert "still asked for tools after 1 request" in status
    assert tool_boxes(meter, view)[0]["result"] == "→ 3"
