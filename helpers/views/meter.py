"""Measure what widgets send to the front end, and replay a stream on a simulated clock.

:class:`WireMeter` replaces ``comm.create_comm`` (what ipywidgets calls to reach the front end)
while it is active: widgets created inside it talk to a recorder instead of a browser. Every
message is framed the way the kernel frames it (a signed Jupyter message with a typical
parent header), so ``meter.bytes`` is what would cross the kernel's iopub socket. The meter
also applies the messages to a model table, like a front end does, so a test can read back
the text a browser would show.

:func:`at_simulated_speed` replays recorded chunks as if they arrived at a given speed, moving
a :class:`SimClock` instead of sleeping: measurements are the same on every machine.

The meter can also act as the browser: :meth:`WireMeter.find` finds a widget by the CSS class
a front end would style, and :meth:`WireMeter.click` sends the message a click sends, so tests
go through what a user sees and does, not through a view's private attributes.

Use the meter for measurements only: widgets created inside it are never displayed, and it
captures every widget created anywhere in the process while it is active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import comm
from comm.base_comm import BaseComm
from jupyter_client.session import Session

__all__ = ["SimClock", "WireMeter", "at_simulated_speed"]

# A typical parent header: the execute_request of the cell that is running.
_PARENT = {"header": {"msg_id": "6f1c2d0e-7a3b4c5d6e7f8091a2b3c4d5_1_1", "msg_type":
                      "execute_request", "username": "learner", "session":
                      "6f1c2d0e-7a3b4c5d6e7f8091a2b3c4d5", "date": "2026-01-01T00:00:00.000Z",
                      "version": "5.4"}}


class SimClock:
    """A clock that only moves when told to (``advance``); call it for the time."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def at_simulated_speed(chunks: Iterable[Any], clock: SimClock,
                       tokens_per_second: float) -> Iterator[Any]:
    """Yield chunks as if one arrived every ``1/tokens_per_second`` s of simulated time."""
    step = 1.0 / tokens_per_second
    for chunk in chunks:
        clock.advance(step)
        yield chunk


class _RecordingComm(BaseComm):
    def __init__(self, meter: WireMeter, **kwargs: Any) -> None:
        self._meter = meter
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        content = dict(data=data or {}, comm_id=self.comm_id, **keys)
        self._meter._record(msg_type, content, metadata or {}, buffers)


class _StableSession(Session):
    """A Session whose message ids do not embed the process id.

    jupyter_client's ids are ``{session}_{pid}_{n}``; a pid with one more digit adds a byte
    to every message, so byte counts would change from run to run and machine to machine.
    """

    @property
    def msg_id(self) -> str:
        number = self.message_count
        self.message_count += 1
        return f"{self.session}_10000_{number}"


class WireMeter:
    """Record every widget message (comm open/update/close) and count its bytes."""

    def __init__(self) -> None:
        self._session = _StableSession(key=b"0" * 32, username="kernel")
        self._lock = threading.Lock()
        self._saved: Any = None
        self._comms: dict[str, _RecordingComm] = {}
        self.reset()

    def reset(self) -> None:
        """Forget what was recorded."""
        with getattr(self, "_lock", threading.Lock()):
            self.messages: list[tuple[str, dict]] = []
            self.bytes = 0
            self.payload_bytes = 0
            self.models: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> WireMeter:
        self._saved = comm.create_comm
        comm.create_comm = self._create_comm
        return self

    def _create_comm(self, **kwargs: Any) -> _RecordingComm:
        created = _RecordingComm(self, **kwargs)
        self._comms[created.comm_id] = created
        return created

    def __exit__(self, *exc_info: object) -> None:
        comm.create_comm = self._saved

    def _record(self, msg_type: str, content: dict, metadata: dict, buffers: Any) -> None:
        msg = self._session.msg(msg_type, content=content, parent=_PARENT, metadata=metadata)
        frames = self._session.serialize(msg, ident=b"comm-" + content["comm_id"].encode())
        size = sum(len(f) for f in frames) + sum(len(b) for b in buffers or ())
        with self._lock:
            self.bytes += size
            self.payload_bytes += len(frames[-1])
            self.apply(msg_type, content)

    def apply(self, msg_type: str, content: dict) -> None:
        """Apply one comm message to the model table, as a front end would."""
        self.messages.append((msg_type, content))
        data = content.get("data") or {}
        if msg_type == "comm_open":
            self.models[content["comm_id"]] = dict(data.get("state", {}))
        elif msg_type == "comm_msg" and data.get("method") == "update":
            self.models.setdefault(content["comm_id"], {}).update(data.get("state", {}))
        elif msg_type == "comm_close":
            self.models.pop(content["comm_id"], None)

    @property
    def count(self) -> int:
        """Number of messages recorded."""
        return len(self.messages)

    def state(self, widget: Any) -> dict[str, Any]:
        """Return the state a front end holds for this widget (or model id)."""
        model_id = widget if isinstance(widget, str) else widget.model_id
        return self.models[model_id]

    def shown_text(self, widget: Any) -> str:
        """Return the text a front end shows inside this widget: Markdown, plain text, values."""
        state = self.state(widget)
        parts: list[str] = []
        for output in state.get("outputs", ()):
            data = output.get("data", {})
            parts.append(data.get("text/markdown", data.get("text/plain", output.get("text", ""))))
        for child in state.get("children", ()):
            parts.append(self.shown_text(str(child).removeprefix("IPY_MODEL_")))
        return "".join(parts)

    def find(self, root: Any, css_class: str) -> str:
        """Return the model id of the first widget under ``root`` that has ``css_class``."""
        model_id = root if isinstance(root, str) else root.model_id
        state = self.state(model_id)
        if css_class in state.get("_dom_classes", ()):
            return model_id
        for child in state.get("children", ()):
            try:
                return self.find(str(child).removeprefix("IPY_MODEL_"), css_class)
            except LookupError:
                continue
        raise LookupError(f"no widget with class {css_class!r} under {model_id}")

    def click(self, widget: Any) -> None:
        """Send the message a browser sends when this button is clicked (as the front end)."""
        model_id = widget if isinstance(widget, str) else widget.model_id
        data = {"method": "custom", "content": {"event": "click"}}
        self._comms[model_id].handle_msg({"content": {"comm_id": model_id, "data": data},
                                          "buffers": []})
