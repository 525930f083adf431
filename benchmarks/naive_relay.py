"""The reference relay written the obvious way: FastAPI + AsyncOpenAI, yielding delta.content.

This is what most tutorials (and the blog this project grew from, in Python) would write. The
benchmark runs it beside our relay so that the comparison comes from the same run.

Run: ``python benchmarks/naive_relay.py --base-url URL --port 0`` (prints its URL).
"""

from __future__ import annotations

import argparse
import socket

import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel


class Question(BaseModel):
    question: str


def create_app(base_url: str, api_key: str, model: str) -> FastAPI:
    """Return the naive relay app."""
    app = FastAPI()
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)

    @app.post("/chatbot/llm/chatstream")
    async def chat(q: Question) -> StreamingResponse:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": q.question}], stream=True)

        async def body():
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        return StreamingResponse(body(), media_type="text/event-stream")

    return app


def main() -> None:
    """Run the naive relay on 127.0.0.1; print its URL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--model", default="moonshot-v1-8k")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn's own bind has
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)  # listen before announcing the URL, or an early client is refused
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(args.base_url, args.api_key, args.model),
                            log_level="warning", access_log=False, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
