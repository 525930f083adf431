"""Where the view runs: a kernel or plain Python, a live JupyterLab or a headless run, which cell.

Deliberate choices:

- **A live front end is told by the environment.** nbval and nbconvert run kernels that no
  browser watches: widgets would draw into nothing and output from threads is dropped. Jupyter
  Server sets ``JPY_SESSION_NAME`` for the kernels of the notebooks it opens, so its presence
  (inside a kernel) means someone sees the widgets.
- **The cell id comes from the request.** JupyterLab sends the id of the cell it executes in
  the execute request's metadata (``cellId``); re-running a cell can then find what it
  started the last time.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["current_cell_id", "has_live_frontend", "in_kernel"]


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, where widgets can reach a front end."""
    shell = sys.modules.get("IPython") and _get_ipython()
    return bool(shell is not None and getattr(shell, "kernel", None) is not None)


def has_live_frontend() -> bool:
    """True if a Jupyter server started this kernel for an open notebook (not nbval/nbconvert)."""
    return in_kernel() and bool(os.environ.get("JPY_SESSION_NAME"))


def current_cell_id() -> str | None:
    """Return the id of the notebook cell running now (JupyterLab sends it), if known."""
    try:
        parent = _get_ipython().get_parent()
    except Exception:
        return None
    cell = (parent or {}).get("metadata", {}).get("cellId")
    return cell if isinstance(cell, str) else None


def _get_ipython() -> Any:
    from IPython import get_ipython

    return get_ipython()
