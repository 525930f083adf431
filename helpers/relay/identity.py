"""Who a client is, for per-client limits and budgets: one small function.

A client is, in this order:

1. **its own token**, when the request carries a valid per-client token (the teacher gives
   each student one): the access guard that checked it names the client in the ASGI scope
   under :data:`CLIENT_SCOPE_KEY`; the name, never the token, is what counters are keyed by;
2. otherwise **its network address**: the TCP peer, or, when the peer is a proxy the relay was
   told to trust (``--trust-proxy``), the last address in ``X-Forwarded-For`` that is not
   itself a trusted proxy. ``X-Forwarded-For`` from anyone else is ignored: any client can
   write that header.

An address is one client however it is written (:func:`helpers.bounded_http.client_key`, the
rule the per-client connection bound uses too): ``::ffff:10.0.0.7``, ``010.0.0.7``,
``[10.0.0.7]`` and ``10.0.0.7:1234`` are ``10.0.0.7``; an IPv6 address counts as its /64 (one
household, one machine: a client may use any of its 2**64 addresses). Deliberate choices:

- **All of loopback is one client** (``addr:127.0.0.1``): 127.0.0.0/8 and ``::1`` are this
  machine (a notebook, a local browser, a proxy in front); an address each would give one
  local program 16 million quotas. On a multi-user host (JupyterHub), users sharing the
  loopback share its quota: give them their own tokens.
- **A forwarded value that is not an address counts as the proxy that wrote it**, not as a
  400: the relay reads what its trusted proxy wrote, so ``unknown`` or an obfuscated
  ``_hidden`` (RFC 7239) is the proxy's setting, not the client's fault, and refusing would
  lock out everyone behind it. Every such value lands in one count (the proxy's address), so
  nonsense cannot buy new quotas.

With one shared token (or none), every client behind one address (a classroom's NAT) is one
client for the limits: give students their own tokens, or trust the proxy that knows them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

from ..bounded_http import Address, client_key, parse_address

__all__ = ["CLIENT_SCOPE_KEY", "TrustedProxies", "client_identity"]

#: Where an access guard puts the name of the client its per-client token belongs to.
CLIENT_SCOPE_KEY = "relay.client"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``) whose X-Forwarded-For counts."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(e.strip(), strict=False)
                                        for e in entries if e.strip()]

    def __contains__(self, address: str | Address | None) -> bool:
        ip = parse_address(address) if isinstance(address, str) else address
        return ip is not None and any(ip in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def client_identity(scope: Scope, trusted: TrustedProxies | None = None) -> str:
    """Return the client a request comes from: ``token:<name>`` or ``addr:<client key>``."""
    named = scope.get(CLIENT_SCOPE_KEY)
    if named:
        return f"token:{named}"
    client = parse_address((scope.get("client") or ("", 0))[0])
    if trusted and client in trusted:
        hops = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        for hop in reversed(hops.split(",") if hops.strip() else []):  # "a, " ends in nonsense
            ip = parse_address(hop)
            if ip is None:
                break  # not an address: the client is the proxy that wrote it
            client = ip
            if ip not in trusted:
                break
    return f"addr:{client_key(client) if client is not None else 'unknown'}"
