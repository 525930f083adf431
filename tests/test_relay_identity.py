"""Who a client is: its token's name, else its address (X-Forwarded-For from trusted proxies)."""

from __future__ import annotations

from helpers.relay.identity import CLIENT_SCOPE_KEY, TrustedProxies, client_identity


def scope(peer: str, forwarded: str | None = None, **extra: object) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"type": "http", "client": (peer, 5000), "headers": headers, **extra}


def test_the_peer_address_without_a_trusted_proxy() -> None:
    assert client_identity(scope("192.0.2.7")) == "addr:192.0.2.7"


def test_anyone_can_write_x_forwarded_for_so_it_counts_only_from_a_trusted_proxy() -> None:
    spoofed = scope("192.0.2.7", "10.0.0.1")
    assert client_identity(spoofed) == "addr:192.0.2.7"
    assert client_identity(spoofed, TrustedProxies(["127.0.0.1"])) == "addr:192.0.2.7"
    assert client_identity(scope("127.0.0.1", "10.0.0.1"),
                           TrustedProxies(["127.0.0.1"])) == "addr:10.0.0.1"


def test_the_last_untrusted_hop_is_the_client() -> None:
    """A client may prepend anything; the hops the trusted proxies added are at the end."""
    trusted = TrustedProxies(["127.0.0.1", "10.1.0.0/16"])
    chain = scope("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3")
    assert client_identity(chain, trusted) == "addr:203.0.113.9"


def test_a_per_client_token_names_the_client_whatever_its_address() -> None:
    named = scope("127.0.0.1", "10.0.0.1", **{CLIENT_SCOPE_KEY: "student-7"})
    assert client_identity(named, TrustedProxies(["127.0.0.1"])) == "token:student-7"


def test_trusted_proxies_parse_addresses_and_networks() -> None:
    trusted = TrustedProxies(["::1", "10.0.0.0/8", " "])
    assert "::1" in trusted and "10.200.1.1" in trusted and "[::1]" in trusted
    assert "11.0.0.1" not in trusted and "not-an-ip" not in trusted
    assert not TrustedProxies()
