"""Readers of a chat-completion stream, each one idea.

- :mod:`.chunks`: small functions over SDK chunks (text, reasoning, usage, finish reason) and
  ``collect`` / ``acollect`` with timings;
- :mod:`.usage`: where a chunk carries usage, for parsed JSON and SDK chunks alike;
- :mod:`.toolcalls`: streamed tool-call pieces joined by index;
- :mod:`.partial_json`: JSON mode while it streams;
- :mod:`.sse`: Server-Sent Events both ways (the relay's encoder and decoder);
- :mod:`.raw_wire`: the raw lines under the SDK (lesson 6).
"""
