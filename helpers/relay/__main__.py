"""``python -m helpers.relay``: run the relay from a shell (``--help`` lists the options)."""

from __future__ import annotations

from .runner import main

raise SystemExit(main())
