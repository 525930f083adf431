"""Show a streamed answer live in the notebook: :func:`show_stream`, and where each part lives.

:func:`show_stream` displays a :class:`StreamView` and starts it, in the way that suits where
it runs. The view is built from small modules, one idea each; their public names are
importable from here too:

- :mod:`helpers.views.view`: :class:`StreamView`, how it consumes the stream (a consumer and
  a painter thread) and when it redraws.
- :mod:`helpers.views.draw`: what it looks like (:class:`ViewWidgets`, :func:`status_line`).
- :mod:`helpers.views.blocks`: Markdown cut into blocks (:func:`split_blocks`), drawn so the
  bytes sent grow linearly (:class:`MarkdownPane`, :class:`AppendOnlyColumn`).
- :mod:`helpers.views.toolparts`: a tool loop's calls
  (``show_stream(lambda: iter_tool_loop(...))``),
  each a part of its own: name, arguments as they grow, result, then the answer.
- :mod:`helpers.views.env`: kernel or plain Python, live front end or headless, which cell.
- :mod:`helpers.errors`: how an error is worded (:func:`describe_error`).

Deliberate choices:

- **Headless, the cell waits and prints once.** nbval does not render widgets and drops
  output from threads. :func:`show_stream` therefore waits for the answer and prints it once,
  from the cell itself, when no Jupyter front end started this kernel
  (:func:`helpers.views.env.has_live_frontend`). Outside a kernel the view is plain text,
  printed as it arrives.
- **Re-running a cell stops what it started.** Otherwise the old answer would keep streaming
  (and be billed) with no view left to stop it.
"""

from __future__ import annotations

from typing import Any

from ..errors import describe_error
from ..streams.chunks import ChunkSource
from .blocks import HARD_LIMIT, SOFT_LIMIT, AppendOnlyColumn, MarkdownPane, split_blocks
from .draw import STATUS_RATE, ViewWidgets, status_line
from .env import current_cell_id, has_live_frontend, in_kernel
from .view import RATE, StreamView

__all__ = [
    "HARD_LIMIT", "RATE", "SOFT_LIMIT", "STATUS_RATE", "AppendOnlyColumn", "MarkdownPane",
    "StreamView", "ViewWidgets", "describe_error", "has_live_frontend", "in_kernel",
    "show_stream", "split_blocks", "status_line",
]

#: The view each notebook cell started last (by cell id), so a re-run can stop it.
_BY_CELL: dict[str, StreamView] = {}


def show_stream(request: ChunkSource, *, wait: bool | None = None,
                **options: Any) -> StreamView:
    """Display a :class:`StreamView`, start it, and return it (assign it: ``view = ...``).

    Args:
        request: a function that makes the streaming request (``lambda: client.chat
            .completions.create(..., stream=True)``), or an open stream; or a tool loop
            (``lambda: iter_tool_loop(client, ...)``), whose calls are shown as they stream.
        wait: block until the answer is complete, then print it once. Default: only when no
            Jupyter front end is attached (nbval, nbconvert), so outputs can be checked.
        options: passed to :class:`StreamView`.
    """
    view = StreamView(**options)
    if not view.widgets:
        view.consume(request)
        return view
    from IPython.display import display

    cell = current_cell_id()
    previous = _BY_CELL.get(cell) if cell else None
    if previous is not None and not previous.done:
        previous.stop()  # re-running a cell must not leave its old answer running (and billed)
    if cell:
        _BY_CELL[cell] = view
    display(view)
    view.start(request)
    if wait if wait is not None else not has_live_frontend():
        view.wait()
        print(view.report())
    return view
