"""Who a client is, for per-client limits and budgets: one small function.

A client is, in this order:

1. **its own token**, when the request carries a valid per-client token (the teacher gives
   each student one): the access guard that checked it names the client in the ASGI scope
   under :data:`CLIENT_SCOPE_KEY`; the name, never the token, is what counters are keyed by;
2. otherwise **its network address**: the TCP peer, or, when the peer is a proxy the relay was
   told to trust (``--trust-proxy``), the last address in ``X-Forwarded-For`` that is not
   itself a trusted proxy. ``X-Forwarded-For`` from anyone else is ignored: any client can
   write that header.

With one shared token (or none), every client behind one address (a classroom's NAT) is one
client for the limits: give students their own tokens, or trust the proxy that knows them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

__all__ = ["CLIENT_SCOPE_KEY", "TrustedProxies", "client_identity"]

#: Where an access guard puts the name of the client its per-client token belongs to.
CLIENT_SCOPE_KEY = "relay.client"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``) whose X-Forwarded-For counts."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(e.strip(), strict=False)
                                        for e in entries if e.strip()]

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def client_identity(scope: Scope, trusted: TrustedProxies | None = None) -> str:
    """Return the client a request comes from: ``token:<name>`` or ``addr:<ip>``."""
    named = scope.get(CLIENT_SCOPE_KEY)
    if named:
        return f"token:{named}"
    peer = (scope.get("client") or ("unknown", 0))[0]
    if trusted and peer in trusted:
        hops = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        for hop in reversed([h.strip() for h in hops.split(",") if h.strip()]):
            peer = hop
            if hop not in trusted:
                break
    return f"addr:{peer}"
