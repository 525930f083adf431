"""Run the offline provider: ``python -m helpers.offline --port 8001``."""

from .cli import main

raise SystemExit(main())
