"""``python -m helpers.offline``: run the offline provider from the shell until Ctrl-C."""

from __future__ import annotations

import argparse
import gc

from ..servers import wait_for_signal
from .server import DEFAULT_DELAY_MS, OfflineProvider

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the offline provider from the shell until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m helpers.offline",
                                     description="An offline OpenAI-compatible provider "
                                                 "(Moonshot wire format) on this machine.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY_MS)
    parser.add_argument("--api-key", default=None,
                        help="accept only this key (default: any non-empty key)")
    args = parser.parse_args(argv)
    provider = OfflineProvider(delay_ms=args.delay_ms, api_key=args.api_key,
                               host=args.host, port=args.port, name="offline-cli")
    try:
        provider.start()
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    # Its own process: keep the start-up objects out of every full collection, as the relay's
    # CLI does (helpers/relay/collector.py): a PDF's parse walked them, 80 ms a pass.
    gc.collect()
    gc.freeze()
    print(f"offline provider serving at {provider.base_url}", flush=True)
    wait_for_signal(provider.server)
    provider.stop()
    return 0
