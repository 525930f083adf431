"""A small tool loop: stream, collect the calls, run allow-listed functions, send the results.

Deliberate choices:

- Only the :class:`Tool` objects you pass can run (an allow-list by name); a call to any
  other name gets an error result, never a look-up.
- Arguments are checked against the tool's JSON schema with ``jsonschema`` before the
  function runs. Bad JSON, a schema error or an exception in the function becomes an
  ``"Error: ..."`` tool message the model reads, not a crash: a model can correct itself.
- The loop is bounded: after ``max_rounds`` model requests that still ask for tools it stops
  and says so (``stopped=True``), so a model that never converges cannot run forever.
- The assistant message sent back keeps the reasoning (Kimi thinking refuses a tool turn
  without it) and the calls as assembled by :class:`~helpers.streams.toolcalls.ToolCallAssembler`.
- Kimi's ``$web_search`` is :data:`WEB_SEARCH`: a builtin whose "result" is its arguments,
  sent back unchanged, as Moonshot's guide says.
- Each round's stream is closed on every way out of the loop: its end, an exception, a
  consumer that stops early (``close()`` / ``aclose()``), a cancellation. The SDK closes a
  response itself only when an error passes through its read; a loop closed while it waits at
  a ``yield`` left the stream to the event loop's finalizer of abandoned generators (PEP 525),
  some time later, and the provider writing meanwhile. The async close is shielded from
  cancellation (anyio), as the relay's own reader's is.

``iter_tool_loop`` yields :class:`~helpers.streams.toolcalls.Event` objects for a live view;
``run_tools`` runs it to the end. ``aiter_tool_loop`` / ``arun_tools`` are the async twins.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..streams.toolcalls import Event, ToolCall, ToolCallAssembler

__all__ = ["WEB_SEARCH", "Tool", "ToolLoop", "ToolLoopResult", "aiter_tool_loop", "arun_tools",
           "iter_tool_loop", "run_call", "run_tools", "tool"]

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class Tool:
    """A Python function a model may call, with the JSON schema of its arguments."""

    name: str
    fn: Callable[..., Any] | None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object",
                                                                "properties": {}})
    description: str = ""
    strict: bool = False
    builtin: bool = False  # a provider's own tool (Kimi's $web_search): declared, not run here

    def spec(self) -> dict[str, Any]:
        """Return the definition to send in ``tools=[...]``."""
        if self.builtin:
            return {"type": "builtin_function", "function": {"name": self.name}}
        fn: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            fn["description"] = self.description
        if self.strict:
            fn["strict"] = True
        return {"type": "function", "function": fn}


WEB_SEARCH = Tool("$web_search", None, builtin=True)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         parameters: dict[str, Any] | None = None, strict: bool = False) -> Any:
    """Make a :class:`Tool` from a function; its schema comes from the type hints.

    Use as ``@tool`` or ``tool(fn, parameters={...})``. Parameters must be ``int``,
    ``float``, ``str`` or ``bool``; those without a default are required.
    """
    def make(f: Callable[..., Any]) -> Tool:
        schema = parameters
        if schema is None:
            hints = inspect.get_annotations(f, eval_str=True)
            props, required = {}, []
            for p in inspect.signature(f).parameters.values():
                props[p.name] = {"type": _JSON_TYPES.get(hints.get(p.name), "string")}
                if p.default is inspect.Parameter.empty:
                    required.append(p.name)
            schema = {"type": "object", "properties": props, "required": required,
                      "additionalProperties": False}
        doc = (inspect.getdoc(f) or "").split("\n")[0]
        return Tool(name or f.__name__, f, schema, doc, strict)
    return make(fn) if fn is not None else make


def _prepare(call: ToolCall, allowed: dict[str, Tool]) -> tuple[Tool | None, Any, str | None]:
    """Return (tool, arguments, error) for a call: the checks before anything runs."""
    found = allowed.get(call.name)
    if found is None:
        return None, None, (f"Error: unknown tool {call.name!r}; the tools are "
                            f"{', '.join(sorted(allowed)) or 'none'}")
    if found.builtin:
        return found, call.arguments, None
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError as exc:
        return found, None, f"Error: the arguments of {call.name} are not valid JSON ({exc})"
    import jsonschema  # on the first call: its import takes ~0.7 s and 20 MB (a URI grammar)

    errors = sorted(jsonschema.Draft202012Validator(found.parameters).iter_errors(args),
                    key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "arguments"
        return found, None, f"Error: invalid arguments for {call.name}: {where}: " \
                            f"{errors[0].message}"
    return found, args, None


def _result_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def run_call(call: ToolCall, tools: Sequence[Tool]) -> str:
    """Run one call if its tool is allowed and its arguments fit; return the result text."""
    found, args, error = _prepare(call, {t.name: t for t in tools})
    if error is not None or found is None:
        return error or "Error: no such tool"
    if found.builtin or found.fn is None:
        return call.arguments  # Kimi's $web_search: send the arguments back unchanged
    try:
        return _result_text(found.fn(**args))
    except Exception as exc:  # the model reads what went wrong and can try again
        return f"Error: {call.name} failed: {type(exc).__name__}: {exc}"


async def arun_call(call: ToolCall, tools: Sequence[Tool]) -> str:
    """Run one call like :func:`run_call`: an async tool function awaited, a plain one in a
    worker thread (so a relay's event loop never waits for a tool; a thread cannot stop
    big-integer arithmetic, so the calculator bounds its operands instead)."""
    found, args, error = _prepare(call, {t.name: t for t in tools})
    if error is not None or found is None:
        return error or "Error: no such tool"
    if found.builtin or found.fn is None:
        return call.arguments
    try:
        if inspect.iscoroutinefunction(found.fn):
            value = await found.fn(**args)
        else:  # in a worker thread: the event loop (a relay's other clients) goes on meanwhile
            value = await anyio.to_thread.run_sync(functools.partial(found.fn, **args))
            if inspect.isawaitable(value):
                value = await value
        return _result_text(value)
    except Exception as exc:
        return f"Error: {call.name} failed: {type(exc).__name__}: {exc}"


@dataclass
class ToolLoopResult:
    """How a tool loop ended: the answer, the whole conversation, and what ran."""

    text: str
    messages: list[dict[str, Any]]
    rounds: int
    calls: list[tuple[ToolCall, str]]  # each call with its result
    stopped: bool = False  # True: max_rounds reached while the model still asked for tools
    usage: dict[str, int] = field(default_factory=dict)  # summed over the rounds reported


def _tool_message(call: ToolCall, result: str) -> dict[str, Any]:
    message = {"role": "tool", "tool_call_id": call.id, "content": result}
    if call.name == WEB_SEARCH.name:
        message["name"] = call.name  # as Moonshot's $web_search guide sends it
    return message


def _end_round(assembler: ToolCallAssembler, history: list[dict]) -> list[Event]:
    """Record the model's turn; return its usage event, and "done" if it answered."""
    events = [Event("usage", data=assembler.usage)] if assembler.usage else []
    if not assembler.calls:
        history.append({"role": "assistant", "content": assembler.content})
        return [*events, Event("done", assembler.content)]
    history.append(assembler.message())
    return events


def _stopped(max_rounds: int) -> Event:
    plural = "" if max_rounds == 1 else "s"
    return Event("stopped", f"the model still asked for tools after {max_rounds} "
                            f"request{plural}: stopped")


def _request(messages: list[dict], tools: Sequence[Tool], kw: dict) -> dict[str, Any]:
    return {"messages": messages, "tools": [t.spec() for t in tools], "stream": True, **kw}


class ToolLoop(Iterator[Event]):
    """The events of a running tool loop; ``response`` is the current request's HTTP response.

    A live view stops a loop by shutting that response's socket down (a provider that is
    silent mid-answer wakes nobody otherwise); :meth:`close` closes the current stream.
    """

    def __init__(self, events: Iterator[Event], streams: list[Any]) -> None:
        self._events = events
        self._streams = streams  # the SDK stream of each request so far

    def __next__(self) -> Event:
        return next(self._events)

    @property
    def response(self) -> Any:
        """Return the HTTP response being read now (None before the first request)."""
        return getattr(self._streams[-1], "response", None) if self._streams else None

    def close(self) -> None:
        """Stop the loop and close the stream it is reading."""
        self._events.close()  # type: ignore[attr-defined]


def iter_tool_loop(client: Any, *, model: str, messages: Sequence[dict], tools: Sequence[Tool],
                   max_rounds: int = 4, **kw: Any) -> ToolLoop:
    """Run the tool loop, yielding events; ``messages`` (a list) grows with the conversation.

    Extra keyword arguments go to ``client.chat.completions.create`` (e.g. ``extra_body``).
    The last event is "done" (its text is the answer) or "stopped".
    """
    streams: list[Any] = []
    return ToolLoop(_tool_loop(client, model, messages, tools, max_rounds, kw, streams), streams)


def _tool_loop(client: Any, model: str, messages: Sequence[dict], tools: Sequence[Tool],
               max_rounds: int, kw: dict, streams: list[Any]) -> Iterator[Event]:
    history = messages if isinstance(messages, list) else list(messages)
    for _ in range(max_rounds):
        assembler = ToolCallAssembler()
        with client.chat.completions.create(model=model,
                                            **_request(history, tools, kw)) as stream:
            streams.append(stream)
            for chunk in stream:
                yield from assembler.feed(chunk)
        ended = _end_round(assembler, history)
        yield from ended
        if ended and ended[-1].kind == "done":
            return
        for call in assembler.tool_calls:
            result = run_call(call, tools)
            history.append(_tool_message(call, result))
            yield Event("tool_call.result", result, call)
    yield _stopped(max_rounds)


async def aiter_tool_loop(client: Any, *, model: str, messages: Sequence[dict],
                          tools: Sequence[Tool], max_rounds: int = 4,
                          **kw: Any) -> AsyncIterator[Event]:
    """Run the tool loop with an ``AsyncOpenAI`` client, yielding events.

    Close it (``aclose()``, or ``contextlib.aclosing``) when you stop reading early: that
    closes the stream of the current round.
    """
    history = messages if isinstance(messages, list) else list(messages)
    for _ in range(max_rounds):
        assembler = ToolCallAssembler()
        stream = await client.chat.completions.create(model=model,
                                                      **_request(history, tools, kw))
        try:
            async for chunk in stream:
                for event in assembler.feed(chunk):
                    yield event
        finally:  # also on aclose() and cancellation: module docstring
            with anyio.CancelScope(shield=True):
                await stream.close()
        ended = _end_round(assembler, history)
        for event in ended:
            yield event
        if ended and ended[-1].kind == "done":
            return
        for call in assembler.tool_calls:
            result = await arun_call(call, tools)
            history.append(_tool_message(call, result))
            yield Event("tool_call.result", result, call)
    yield _stopped(max_rounds)


class _Collector:
    """Fold a loop's events into a :class:`ToolLoopResult`, passing each to ``on_event``."""

    def __init__(self, messages: Sequence[dict], on_event: Callable[[Event], None] | None):
        self.result = ToolLoopResult("", list(messages), 0, [])
        self.start = len(messages)
        self.on_event = on_event

    def __call__(self, event: Event) -> None:
        if event.kind == "tool_call.result" and event.call is not None:
            self.result.calls.append((event.call, event.text))
        elif event.kind == "done":
            self.result.text = event.text
        elif event.kind == "stopped":
            self.result.stopped = True
        elif event.kind == "usage" and event.data:
            total = self.result.usage
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                total[key] = total.get(key, 0) + int(event.data.get(key) or 0)
        if self.on_event is not None:
            self.on_event(event)

    def finish(self) -> ToolLoopResult:
        history = self.result.messages[self.start:]
        self.result.rounds = sum(1 for m in history if m["role"] == "assistant")
        return self.result


def run_tools(client: Any, *, model: str, messages: Sequence[dict], tools: Sequence[Tool],
              max_rounds: int = 4, on_event: Callable[[Event], None] | None = None,
              **kw: Any) -> ToolLoopResult:
    """Run the tool loop to its end; return the answer, the conversation and the calls."""
    collect = _Collector(messages, on_event)
    with closing(iter_tool_loop(client, model=model, messages=collect.result.messages,
                                tools=tools, max_rounds=max_rounds, **kw)) as events:
        for event in events:  # an on_event that raises closes the stream too
            collect(event)
    return collect.finish()


async def arun_tools(client: Any, *, model: str, messages: Sequence[dict],
                     tools: Sequence[Tool], max_rounds: int = 4,
                     on_event: Callable[[Event], None] | None = None,
                     **kw: Any) -> ToolLoopResult:
    """Run the tool loop to its end with an ``AsyncOpenAI`` client."""
    collect = _Collector(messages, on_event)
    async with aclosing(aiter_tool_loop(client, model=model, messages=collect.result.messages,
                                        tools=tools, max_rounds=max_rounds, **kw)) as events:
        async for event in events:
            collect(event)
    return collect.finish()
