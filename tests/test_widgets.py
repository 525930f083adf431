"""The live stream view, kernel side: bytes, redraws, final text, errors, stop, fallbacks."""

from __future__ import annotations

import html
import io
import json
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import ipywidgets
import openai
import pytest
from conftest import FAKE_KEY

from helpers.money.cost import call_cost
from helpers.money.labels import cost_label, priced_by
from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply, filler_reply
from helpers.views.meter import SimClock, WireMeter, at_simulated_speed
from helpers.views.show import (
    HARD_LIMIT,
    RATE,
    StreamView,
    describe_error,
    show_stream,
    split_blocks,
)

MODEL = "moonshot-v1-8k"
PYTHAGORAS = "What is the Pythagorean theorem?"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(offline: OfflineProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0) as c:
        yield c


def ask(client: openai.OpenAI, question: str):
    """Return a request function, the way a lesson hands it to the view."""
    return lambda: client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], stream=True)


def naive_view(chunks, meter_clock=None) -> int:
    """The obvious view: one Output widget, the whole text re-sent on every token."""
    out = ipywidgets.Output()
    text = ""
    redraws = 0
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            out.outputs = ({"output_type": "display_data", "data": {"text/markdown": text},
                            "metadata": {}},)
            redraws += 1
    return redraws


# -- splitting into blocks ------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    compose_reply([{"role": "user", "content": PYTHAGORAS}]).text,
    compose_reply([{"role": "user", "content": "一元二次方程的求根公式是什么？"}]).text,
    filler_reply(3000),
    "Code:\n\n```python\nx = 1\n\n\ny = 2\n```\n\nDone.\n\n",
    "$$\na^2\n\nb^2\n$$\n\nafter " + "word " * 400,
    "x" * 10_000,
    "",
], ids=["math", "chinese", "long-paragraph", "fence", "display-math", "no-spaces", "empty"])
def test_split_blocks_gives_the_text_back_with_a_bounded_tail(text: str) -> None:
    blocks, tail = split_blocks(text)
    assert "".join(blocks) + tail == text
    assert len(tail) <= HARD_LIMIT
    assert all(block for block in blocks)


def test_split_blocks_never_cuts_inside_math_or_a_code_fence() -> None:
    blocks, tail = split_blocks("Code:\n\n```\na\n\nb\n```\n\n$$\nx\n\ny\n$$\n\nEnd")
    assert blocks == ["Code:\n\n", "```\na\n\nb\n```\n\n", "$$\nx\n\ny\n$$\n\n"]
    assert tail == "End"


def test_a_long_paragraph_is_cut_before_a_word_outside_inline_math() -> None:
    text = "The value $a + b + c$ is " + "big " * 300
    blocks, tail = split_blocks(text, soft_limit=100)
    assert blocks  # cut as late as possible: fewer cuts, and the tail is short
    for block in blocks:
        assert block.count("$") % 2 == 0
        assert block.endswith(" ")
    assert len(tail) <= 100
    streamed: list[str] = []
    pending = ""
    for word in text.split(" "):  # as a stream: each cut leaves a short open tail
        new, pending = split_blocks(pending + word + " ", soft_limit=100)
        streamed += new
        assert len(pending) <= 100
    assert len(streamed) > 5 and all(b.count("$") % 2 == 0 for b in streamed)


# -- bytes and redraws ----------------------------------------------------------------------
def measure(chunks, view_kind: str, tokens_per_second: float) -> tuple[int, int, str]:
    with WireMeter() as meter:
        clock = SimClock()
        if view_kind == "naive":
            redraws = naive_view(at_simulated_speed(chunks, clock, tokens_per_second))
            return meter.bytes, redraws, ""
        view = StreamView(widgets=True, clock=clock)
        view.consume(at_simulated_speed(chunks, clock, tokens_per_second))
        return meter.bytes, view.redraws, meter.shown_text(view.root)


def test_bytes_sent_to_the_front_end_grow_linearly_with_the_answer(client) -> None:
    chunks = {n: list(ask(client, f"[tokens:{n}]")()) for n in (1000, 4000)}
    ours = {n: measure(chunks[n], "ours", 100) for n in chunks}
    naive = {n: measure(chunks[n], "naive", 100) for n in chunks}
    # 4x the answer: linear costs about 4x, quadratic about 16x.
    assert ours[4000][0] / ours[1000][0] < 5
    assert naive[4000][0] / naive[1000][0] > 12
    assert ours[4000][0] * 10 < naive[4000][0]
    assert ours[4000][2] == filler_reply(4000)


def test_redraws_are_bounded_by_the_rate_however_fast_tokens_come(client) -> None:
    chunks = list(ask(client, "[tokens:5000]")())
    _, redraws, shown = measure(chunks, "ours", tokens_per_second=1000)  # 5 simulated seconds
    assert 5 * RATE * 0.9 <= redraws <= 5 * RATE + 2
    assert shown == filler_reply(5000)


def test_background_redraws_keep_their_distance(client) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, "[tokens:3000][delay:1]"))
        view.wait(60)
    gaps = [b - a for a, b in zip(view.redraw_times[:-2], view.redraw_times[1:-1], strict=True)]
    assert view.redraws >= 3 and gaps
    assert min(gaps) >= 1 / RATE * 0.999  # the last (final) redraw may come sooner
    assert meter.shown_text(view.root) == view.text == filler_reply(3000)


@pytest.mark.parametrize("question", [PYTHAGORAS, "[tokens:2500]", "你好"])
def test_the_final_text_is_exactly_the_assembled_stream(client, question: str) -> None:
    expected = "".join(c.choices[0].delta.content or "" for c in ask(client, question)()
                       if c.choices)
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, question))
        view.wait(30)
    assert view.state == "done"
    assert view.text == expected
    assert meter.shown_text(view.root) == expected
    assert "usage" in view.status() and view.result.usage is not None


# -- cost -----------------------------------------------------------------------------------
def _status(meter: WireMeter, view: StreamView) -> str:
    return html.unescape(meter.state(meter.find(view.root, "llm-stream-status"))["value"])


def test_the_status_line_shows_the_cost_of_the_usage_the_provider_reported(client,
                                                                           offline) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, PYTHAGORAS))
        view.wait(30)
    reported = offline.stats()["recent"][-1]["usage"]  # what the provider itself sent
    cost = call_cost(reported, MODEL)
    assert cost is not None and cost.total > 0
    label = f"usage {reported['prompt_tokens']} prompt + {reported['completion_tokens']} " \
            f"completion = {reported['total_tokens']} · {cost} (offline counts × real price)"
    assert _status(meter, view).endswith(label + "</span>")
    assert view.cost == cost and view.model == MODEL and view.offline


def test_a_model_without_a_price_shows_no_cost_not_zero(client, offline) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(lambda: client.chat.completions.create(
            model="offline-tiny", messages=[{"role": "user", "content": "Hi"}], stream=True))
        view.wait(30)
    assert offline.stats()["recent"][-1]["usage"]["total_tokens"] > 0
    status = _status(meter, view)
    assert view.state == "done" and "usage" in status
    assert "$" not in status and "cost" not in status and view.cost is None


def test_a_real_providers_cost_is_not_marked_offline() -> None:
    import httpx2

    body = json.dumps({"model": MODEL, "messages": [], "stream": True}).encode()
    request = httpx2.Request("POST", "https://api.moonshot.ai/v1/chat/completions", content=body)
    assert priced_by(httpx2.Response(200, request=request)) == (MODEL, False)
    marked = httpx2.Response(200, request=request, headers={"x-offline-provider": "yes"})
    assert priced_by(marked) == (MODEL, True)
    assert priced_by(None) == (None, False)
    cost = call_cost({"prompt_tokens": 1000, "completion_tokens": 500}, MODEL)
    assert cost_label(cost) == str(cost) == "$0.001200"
    assert cost_label(None) is None


def test_a_tool_loop_is_priced_over_the_usage_of_all_its_requests(client, offline) -> None:
    from test_tools import CALC

    from helpers.tools.loop import iter_tool_loop

    with WireMeter() as meter:
        view = StreamView(widgets=True).start(lambda: iter_tool_loop(
            client, model=MODEL, tools=[CALC],
            messages=[{"role": "user", "content": 'calculate "2*(3+4)^2"'}]))
        view.wait(30)
    reported = [r["usage"] for r in offline.stats()["recent"]]
    assert view.state == "done" and len(reported) == 2  # the call, then the answer
    summed = {k: sum(u[k] for u in reported) for k in ("prompt_tokens", "completion_tokens")}
    cost = call_cost(summed, MODEL)
    assert cost is not None and view.cost == cost
    assert f"· {cost} (offline counts × real price)" in _status(meter, view)


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("marker", "expected"), [
    ("[fault:401]", "401 AuthenticationError: Invalid Authentication"),
    ("[fault:429]", "429 RateLimitError: Rate limit reached"),
    ("[fault:midstream]", "APIError: The stream failed midway"),
    ("[fault:cut]", "peer closed connection"),
], ids=["401", "429", "midstream", "cut"])
def test_errors_show_a_readable_message_and_keep_the_text(client, marker: str,
                                                         expected: str) -> None:
    full = compose_reply([{"role": "user", "content": PYTHAGORAS}]).text
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, f"{marker} {PYTHAGORAS}"))
        view.wait(30)
    assert view.state == "error"
    assert expected in (view.error or "")
    status = meter.state(meter.find(view.root, "llm-stream-status"))["value"]
    assert expected.split(":")[0] in status and "error" in status
    shown = meter.shown_text(view.root)
    assert shown == view.text
    if marker in ("[fault:midstream]", "[fault:cut]"):
        assert view.text and full.startswith(view.text) and view.text != full
    else:
        assert view.text == ""


def test_an_api_key_never_reaches_widget_state_or_errors(offline: OfflineProvider) -> None:
    offline.api_key = "the-right-key-for-this-test"
    with WireMeter() as meter, openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY,
                                             max_retries=0) as client:
        view = StreamView(widgets=True).start(ask(client, PYTHAGORAS))
        view.wait(30)
    assert view.state == "error" and "401" in (view.error or "")
    wire = json.dumps(meter.messages)
    assert FAKE_KEY not in wire and FAKE_KEY[8:] not in wire
    leaky = openai.AuthenticationError(f"Incorrect API key provided: {FAKE_KEY}",
                                       response=_response(401), body=None)
    assert FAKE_KEY not in describe_error(leaky)


def _response(status: int):
    import httpx2

    return httpx2.Response(status, request=httpx2.Request("POST", "http://127.0.0.1/v1"))


# -- stop -----------------------------------------------------------------------------------
def test_stop_closes_the_upstream_connection(client, offline: OfflineProvider) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, "[tokens:5000][delay:5]"))
        view.wait(30, tokens=20)
        stop_button = meter.find(view.root, "llm-stream-stop")
        meter.click(stop_button)  # the message a click in the browser sends
        view.wait(30)
    stats = offline.wait_for(lambda s: s["disconnects"] >= 1, timeout=10)
    record = stats["recent"][-1]
    assert record["outcome"] == "disconnected"
    assert record["sent"] < record["planned"]
    assert view.state == "stopped"
    assert "stopped" in meter.state(meter.find(view.root, "llm-stream-status"))["value"]
    assert meter.state(stop_button)["disabled"] is True
    assert 20 <= len(view.result.pieces) < 5000
    assert meter.shown_text(view.root) == view.text


def test_stop_works_while_the_provider_is_silent(client, offline: OfflineProvider) -> None:
    with WireMeter():
        view = StreamView(widgets=True).start(ask(client, f"[fault:stall] {PYTHAGORAS}"))
        offline.wait_for(lambda s: s["faults"] >= 1 and s["open_streams"] == 1, timeout=10)
        view.stop()
        view.wait(10)
    offline.wait_for(lambda s: s["disconnects"] >= 1 and s["open_streams"] == 0, timeout=10)
    assert view.state == "stopped" and view.text


# -- without a front end ---------------------------------------------------------------------
def test_plain_text_fallback_prints_the_answer_as_it_comes(client) -> None:
    out = io.StringIO()
    view = StreamView(widgets=False, out=out).start(ask(client, PYTHAGORAS))
    expected = compose_reply([{"role": "user", "content": PYTHAGORAS}]).text
    assert view.done and view.state == "done" and not hasattr(view, "root")
    printed = out.getvalue()
    assert printed.startswith(expected + "\n── done · ")
    assert view._repr_mimebundle_() == {"text/plain": view.report()}


def test_headless_show_stream_waits_and_prints_the_text_once(client, capsys) -> None:
    with WireMeter():
        view = show_stream(ask(client, PYTHAGORAS), widgets=True, wait=True)
    expected = compose_reply([{"role": "user", "content": PYTHAGORAS}]).text
    printed = capsys.readouterr().out
    assert view.done and printed.count(expected) == 1
    assert f"{expected}\n── done · " in printed


# -- a real kernel: the thread keeps drawing while other cells run (ipykernel 7) -------------
@pytest.mark.slow
def test_in_a_kernel_updates_keep_coming_while_another_cell_runs(offline) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "TEST_OFFLINE_URL": offline.base_url}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    try:
        cell1 = kc.execute(
            "import os, openai\nfrom helpers import show_stream\n"
            "client = openai.OpenAI(base_url=os.environ['TEST_OFFLINE_URL'], api_key='k')\n"
            "view = show_stream(lambda: client.chat.completions.create(model='moonshot-v1-8k',"
            " stream=True, messages=[{'role': 'user', 'content': '[tokens:400][delay:5]'}]),"
            " wait=False)\n")
        meter, root, cell2 = WireMeter(), None, None
        late_updates, outputs = 0, []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if cell2 and offline.stats()["completed"] and root and \
                        meter.shown_text(root) == filler_reply(400):
                    break
                continue
            kind, content = msg["msg_type"], msg["content"]
            parent = msg["parent_header"].get("msg_id")
            if kind.startswith("comm"):
                meter.apply(kind, content)
                late_updates += cell2 is not None and kind == "comm_msg"
            elif kind == "display_data" and parent == cell1:
                root = content["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            elif kind == "status" and parent == cell1 and content["execution_state"] == "idle":
                assert offline.stats()["completed"] == 0, "the cell must not wait for the answer"
                cell2 = kc.execute("total = sum(range(3_000_000)); print('other cell', total)")
            elif kind in ("stream", "error", "execute_result"):
                outputs.append((parent, content.get("text", content.get("ename"))))
        assert root is not None and late_updates > 0
        assert meter.shown_text(root) == filler_reply(400)
        assert outputs == [(cell2, "other cell 4499998500000\n")]  # nothing leaked from threads
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run_cell(kc, code: str, cell_id: str | None = None) -> str:
    """Execute code in the kernel as JupyterLab does (with its cell id); return what it printed."""
    msg = kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True}, metadata={"cellId": cell_id} if cell_id
        else {})
    kc.shell_channel.send(msg)
    printed, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            reply = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream":
            printed.append(content["text"])
        elif kind == "error":
            raise AssertionError(f"{content['ename']}: {content['evalue']}")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(printed)
    raise AssertionError(f"the cell did not finish in 60 s: {code!r}")


@pytest.mark.slow
def test_rerunning_a_cell_stops_the_answer_it_started(offline) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "TEST_OFFLINE_URL": offline.base_url}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    try:
        run_cell(kc, "import os, openai\nfrom helpers import show_stream\n"
                 "client = openai.OpenAI(base_url=os.environ['TEST_OFFLINE_URL'], api_key='k')\n"
                 "views = []\n"
                 "def ask(q):\n"
                 "    return lambda: client.chat.completions.create(model='moonshot-v1-8k',"
                 " stream=True, messages=[{'role': 'user', 'content': q}])\n")
        long = "views.append(show_stream(ask('[tokens:5000][delay:5]'), wait=False))\n"
        run_cell(kc, long + "views[-1].wait(30, tokens=5)", cell_id="cell-7")
        short = f"views.append(show_stream(ask({PYTHAGORAS!r}), wait=False))\n"
        run_cell(kc, short + "views[-1].wait(30)", cell_id="cell-8")  # another cell
        assert run_cell(kc, "print(views[0].state)") == "streaming\n"
        run_cell(kc, short, cell_id="cell-7")  # the same cell again
        states = run_cell(kc, "for v in views: v.wait(30)\nprint([v.state for v in views])")
        assert states == "['stopped', 'done', 'done']\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    offline.wait_for(lambda s: s["disconnects"] >= 1, timeout=10)


def test_wire_meter_bytes_do_not_depend_on_the_process_id(monkeypatch):
    """Regression: msg ids embed the pid, so a pid with more digits changed lesson 3's table."""
    import ipywidgets

    from helpers.views.meter import WireMeter

    sizes = []
    for pid in (7, 1234567):
        monkeypatch.setattr("os.getpid", lambda pid=pid: pid)
        with WireMeter() as meter:
            w = ipywidgets.HTML("x")
            for i in range(20):
                w.value = f"text {i}"
        sizes.append(meter.bytes)
    assert sizes[0] == sizes[1] > 0


# -- reasoning models: a Thinking pane above the answer ----------------------------------------
def ask_model(client: openai.OpenAI, model: str, question: str):
    return lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], stream=True)


def body_parts(meter: WireMeter, view: StreamView) -> list[str]:
    """The model ids a front end shows in the view's body, in order."""
    body = meter.state(meter.find(view.root, "llm-stream-body"))
    return [str(child).removeprefix("IPY_MODEL_") for child in body["children"]]


def panes(meter: WireMeter, view: StreamView) -> tuple[str | None, str]:
    """The text a front end shows in the Thinking pane (None if there is none) and the answer."""
    try:
        thinking = meter.find(view.root, "llm-stream-thinking-box")
    except LookupError:
        thinking = None
    answer = "".join(meter.shown_text(part) for part in body_parts(meter, view)
                     if part != thinking)
    return (meter.shown_text(thinking) if thinking else None), answer


def reasoning_chunks(n: int) -> list:
    """A stream of n reasoning pieces, then n answer pieces (filler text), DeepSeek-shaped."""
    from openai.types.chat import ChatCompletionChunk

    from helpers.offline.replies import split_pieces

    def chunk(delta: dict, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate({
            "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "r",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    return ([chunk({"reasoning_content": p}) for p in split_pieces(filler_reply(n))]
            + [chunk({"content": p}) for p in split_pieces(filler_reply(n))]
            + [chunk({}, "stop")])


@pytest.mark.parametrize("model", ["deepseek-reasoner", "kimi-k2-thinking"])
def test_reasoning_and_answer_land_in_separate_panes(client, model: str) -> None:
    reply = compose_reply([{"role": "user", "content": PYTHAGORAS}], reasoning=True)
    assert reply.reasoning and reply.text
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask_model(client, model, PYTHAGORAS))
        view.wait(30)
    assert view.state == "done"
    assert (view.reasoning, view.text) == (reply.reasoning, reply.text)
    assert panes(meter, view) == (reply.reasoning, reply.text)
    box = meter.find(view.root, "llm-stream-thinking-box")
    thinking = meter.state(box)
    assert list(thinking["titles"]) == ["Thinking"]
    assert thinking["selected_index"] is None  # folded away once the answer started
    assert body_parts(meter, view)[0] == box  # above the answer's column and tail
    assert len(body_parts(meter, view)) == 3


def test_a_model_without_reasoning_gets_no_thinking_pane(client) -> None:
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(ask(client, PYTHAGORAS))
        view.wait(30)
    assert view.reasoning == "" and panes(meter, view) == (None, view.text)
    assert not any(state.get("_model_name") == "AccordionModel"
                   for state in meter.models.values())
    assert len(body_parts(meter, view)) == 2  # the answer's column and tail


def test_bytes_stay_linear_with_reasoning() -> None:
    measured = {}
    for n in (1000, 4000):
        with WireMeter() as meter:
            clock = SimClock()
            view = StreamView(widgets=True, clock=clock)
            view.consume(at_simulated_speed(reasoning_chunks(n), clock, 100))
        measured[n] = meter.bytes
        assert panes(meter, view) == (filler_reply(n), filler_reply(n))
        assert (view.reasoning, view.text) == (filler_reply(n), filler_reply(n))
        assert view.redraws <= 2 * n / 100 * RATE + 2  # 2n pieces at 100/s, 30 redraws/s
    # 4x the thinking and the answer: linear costs about 4x, quadratic about 16x.
    assert measured[4000] / measured[1000] < 5


def test_an_error_keeps_the_thinking_and_the_partial_answer(client) -> None:
    reply = compose_reply([{"role": "user", "content": PYTHAGORAS}], reasoning=True)
    with WireMeter() as meter:
        view = StreamView(widgets=True).start(
            ask_model(client, "deepseek-reasoner", f"[fault:midstream] {PYTHAGORAS}"))
        view.wait(30)
    assert view.state == "error" and "failed midway" in (view.error or "")
    assert panes(meter, view) == (reply.reasoning, view.text)
    assert view.reasoning == reply.reasoning
    assert view.text and reply.text.startswith(view.text) and view.text != reply.text


def test_headless_show_stream_prints_thinking_and_answer_labelled_once(client, capsys) -> None:
    reply = compose_reply([{"role": "user", "content": PYTHAGORAS}], reasoning=True)
    with WireMeter():
        view = show_stream(ask_model(client, "kimi-k2-thinking", PYTHAGORAS), widgets=True,
                           wait=True)
    printed = capsys.readouterr().out
    assert view.done and printed.count(reply.reasoning) == 1 and printed.count(reply.text) == 1
    # (outside a kernel, display() prints the view's repr first; the report follows it)
    assert f"\nThinking:\n{reply.reasoning}\n\nAnswer:\n{reply.text}\n── done · " in printed


def test_plain_text_labels_thinking_and_answer_as_they_come(client) -> None:
    reply = compose_reply([{"role": "user", "content": PYTHAGORAS}], reasoning=True)
    out = io.StringIO()
    StreamView(widgets=False, out=out).consume(ask_model(client, "deepseek-reasoner", PYTHAGORAS))
    assert out.getvalue().startswith(
        f"Thinking:\n{reply.reasoning}\n\nAnswer:\n{reply.text}\n── done · ")
