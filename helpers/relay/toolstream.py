"""The relay's tool loop: tools run on the server, and the page is told what happens.

Deliberate choices:

- **Only tools the relay was given** (``create_app(tools=...)``) ever run; the browser sends a
  question, never a tool name or definition, so a page cannot make the server run anything.
- **The SDK's typed stream, not the raw reader**, for a turn with tools: tool turns are rare
  and short, and :func:`helpers.tools.loop.aiter_tool_loop` (assembly by index, argument checks,
  bounded rounds) is the one loop the lessons teach.
- **Events of their own** in the wire contract (docs/architecture.md), after the text events
  the page already knows: ``tool_call`` (``part``, ``name``), ``tool_arguments`` (``part``,
  ``content``: a fragment), ``tool_result`` (``part``, ``name``, ``arguments``, ``result``),
  ``tool_stopped`` (the loop hit its bound). ``part`` numbers the calls of one answer, across
  rounds, so the page can show each call as its own part. Usage is summed over the rounds.
- **Closing the batches closes the loop**, and with it the provider's stream of the current
  round: ``async for`` leaves an unfinished generator to the event loop's finalizer, and a page
  that leaves mid-answer would leave the provider writing. Shielded, as the plain reader's
  hang-up is (:mod:`helpers.relay.upstream`): the relay closes the batches from a cancelled task.
- **Every round is reserved before it is sent** (a daily budget, :mod:`helpers.relay.limits`):
  the loop's client is wrapped so each request after the first (admitted with the tool
  definitions) first reserves its prompt, tools and ``max_tokens``; each round's usage corrects
  its reservation. A round the budget cannot pay for is not sent: the answer ends with an
  ``error`` event of the relay's 429 type (``relay_budget_limit``), after the usage so far.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import openai

from ..money.labels import with_cost
from ..streams.toolcalls import Event
from ..tools.calculator import CALCULATOR_SCHEMA, calculate
from ..tools.loop import Tool, aiter_tool_loop, tool
from .limits import RelayLimit, Ticket
from .upstream import Batch

__all__ = ["MATH_TOOLS", "tool_batches"]

#: The math teacher's assistant's tools: a calculator that really computes (ast, never eval).
MATH_TOOLS: tuple[Tool, ...] = (
    tool(calculate, parameters=CALCULATOR_SCHEMA),
)
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class _Metered:
    """``client.chat.completions.create`` that reserves each request after the first."""

    def __init__(self, client: openai.AsyncOpenAI, ticket: Ticket) -> None:
        self.client, self.ticket, self.sent = client, ticket, 0
        self.chat, self.completions = self, self  # client.chat.completions.create

    async def create(self, **request: Any) -> Any:
        if self.sent:  # the first round was reserved when the request was admitted
            await self.ticket.reserve_round(request["messages"], request.get("tools") or ())
        self.sent += 1
        return await self.client.chat.completions.create(**request)


async def tool_batches(client: openai.AsyncOpenAI, model: str, messages: list[dict],
                       tools: Sequence[Tool], *, ask_for_usage: bool = True,
                       max_rounds: int = 4, max_tokens: int | None = None,
                       offline: bool = False, ticket: Ticket | None = None
                       ) -> AsyncIterator[Batch]:
    """Run the tool loop; yield the relay's events, one batch per loop event.

    Text and reasoning become ``delta`` / ``reasoning`` as in a plain answer; calls become
    ``tool_call`` / ``tool_arguments`` / ``tool_result``; the last batch is ``usage`` (summed,
    when reported, with its cost; ``offline``: counted by the offline provider) and ``done``.
    Raises the SDK's exceptions, like the plain reader. ``ticket``: the admitted request,
    whose budget reserves every later round (a round refused ends with an ``error`` event).
    """
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if ask_for_usage else {}
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    parts: dict[int, int] = {}  # id(ToolCall) -> part number in this answer
    usage: dict[str, int] = {}
    finish = "stop"

    def part(event: Event) -> int:
        return parts.setdefault(id(event.call), len(parts))

    loop_client: Any = client if ticket is None else _Metered(client, ticket)
    events = aiter_tool_loop(loop_client, model=model, messages=list(messages), tools=tools,
                             max_rounds=max_rounds, **extra)
    refused: RelayLimit | None = None
    try:
        async for event in events:
            batch: Batch = []
            if event.kind == "content":
                batch.append(("delta", {"content": event.text}))
            elif event.kind == "reasoning":
                batch.append(("reasoning", {"content": event.text}))
            elif event.kind == "tool_call.start" and event.call is not None:
                batch.append(("tool_call", {"part": part(event), "name": event.call.name}))
            elif event.kind == "tool_call.arguments":
                batch.append(("tool_arguments", {"part": part(event), "content": event.text}))
            elif event.kind == "tool_call.result" and event.call is not None:
                batch.append(("tool_result", {"part": part(event), "name": event.call.name,
                                              "arguments": event.call.arguments,
                                              "result": event.text}))
            elif event.kind == "usage" and event.data:
                for key in _USAGE_KEYS:
                    usage[key] = usage.get(key, 0) + int(event.data.get(key) or 0)
                if ticket is not None:
                    await ticket.round_ended(event.data)
            elif event.kind == "stopped":
                batch.append(("tool_stopped", {"message": event.text}))
                finish = "tool_calls"
            if batch:
                yield batch
    except RelayLimit as exc:  # the next round would overspend: not sent
        refused = exc
    finally:  # closed early (the page left) or failed: the loop closes its stream
        with anyio.CancelScope(shield=True):
            await events.aclose()
    final: Batch = [("usage", with_cost(usage, model, offline=offline))] if usage else []
    if refused is not None:
        final.append(("error", {"type": refused.kind, "message": refused.message,
                                "status": 429}))
    else:
        final.append(("done", {"finish_reason": finish}))
    yield final
