"""The garbage collector tuned for a relay's own process (``--workers`` and the CLI).

Never in a notebook's kernel: there the collector serves the learner's code too.
"""

from __future__ import annotations

import gc

__all__ = ["serving_gc"]


def serving_gc() -> None:
    """Tune the garbage collector for a relay's own process (never a notebook's kernel).

    - ``gc.freeze()`` after start-up: imports and the app are some 235,000 objects that live
      as long as the process, and every full collection walked them (about 80 ms here).
    - Full collections ten times rarer (``threshold2`` 10 -> 100): with a thousand streams
      open, their objects are old enough to be walked by each full collection, about 100 ms
      each, several times a second: a third of the relay's CPU (docs/performance.md). Young
      garbage is still collected as often; cycles that die old wait longer.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)
