"""Lesson 4 solutions: a relay that says how it ended; the page's event splitter in Python."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI


def make_relay(aclient: AsyncOpenAI, model: str) -> FastAPI:
    """Exercise 1: section 1's relay, whose `done` event carries the finish_reason.

    The finish_reason arrives in the last chunk with choices, whose delta is empty. So it is
    read in its own ``if``, outside the one that needs content: inside it, the reason is
    never seen and ``done`` says ``{"finish_reason": null}``. ``json.dumps`` keeps a newline
    of the answer inside a JSON string, so it cannot end an event early.
    """
    app = FastAPI()

    @app.post("/chat")
    async def chat(body: dict) -> StreamingResponse:
        async def events():
            stream = await aclient.chat.completions.create(
                model=model, stream=True, messages=[{"role": "user", "content": body["question"]}])
            finish_reason = None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    data = json.dumps({"content": chunk.choices[0].delta.content})
                    yield f"event: delta\ndata: {data}\n\n"
                if chunk.choices and chunk.choices[0].finish_reason:
                    finish_reason = chunk.choices[0].finish_reason
            yield f"event: done\ndata: {json.dumps({'finish_reason': finish_reason})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app


def split_events(buffer: str) -> tuple[list[tuple[str, object]], str]:
    """Exercise 2: the complete events in ``buffer`` as (name, data), and the incomplete rest.

    An event is complete only when its blank line has arrived. ``split`` leaves whatever
    follows the last blank line as the final item, possibly ``""`` or half an event (even
    half of the blank line: a single newline); it goes back as ``rest`` and the next read
    completes it. Dropping it loses events when the network cuts the stream at an awkward
    place, which the check does on purpose (pieces of 1, 2, 7 and 13 characters).
    """
    *complete, rest = buffer.split("\n\n")  # the last item: after the last blank line
    events = []
    for block in complete:
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events, rest
