"""Issue 23, finding 13: one client is one client however its address is written. Behind a
trusted proxy, ``10.0.0.7``, ``::ffff:10.0.0.7``, ``010.0.0.7``, ``[10.0.0.7]`` and
``10.0.0.7:1234`` were each a client with a quota of its own, and so was ``nonsense``; each
loopback address had its own quota, and an IPv6 /64 would have given billions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import FAKE_KEY

from helpers.bounded_http import client_key, parse_address
from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.relay.identity import TrustedProxies, client_identity
from helpers.relay.limits import Limits
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
PROXY = TrustedProxies(["127.0.0.1", "10.1.0.0/16"])


def via_proxy(forwarded: str, peer: str = "127.0.0.1") -> str:
    return client_identity({"type": "http", "client": (peer, 5000),
                            "headers": [(b"x-forwarded-for", forwarded.encode())]}, PROXY)


def peer(address: str) -> str:
    return client_identity({"type": "http", "client": (address, 5000), "headers": []})


@pytest.mark.parametrize("written", ["10.0.0.7", "::ffff:10.0.0.7", "010.0.0.7",
                                     "[10.0.0.7]", "10.0.0.7:1234", "[::ffff:10.0.0.7]:80",
                                     " 10.0.0.7 ", "[::ffff:a00:7]"])
def test_every_spelling_of_an_address_is_the_same_client(written: str) -> None:
    assert via_proxy(written) == "addr:10.0.0.7"


def test_an_ipv6_client_is_its_slash_64() -> None:
    assert via_proxy("2001:db8:1:2::7") == via_proxy("2001:db8:1:2:ffff:1:2:3") == \
        via_proxy("[2001:DB8:1:2::9]:443") == "addr:2001:db8:1:2::/64"
    assert via_proxy("2001:db8:1:3::7") == "addr:2001:db8:1:3::/64"  # another /64


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.254",
                                     "::1", "::ffff:127.0.0.1"])
def test_all_of_loopback_is_one_client_this_machine(address: str) -> None:
    assert peer(address) == "addr:127.0.0.1"


@pytest.mark.parametrize("nonsense", ["nonsense", "unknown", "_hidden", "999.0.0.1",
                                      "10.0.0.7:port", "[10.0.0.7", "", "1.2.3.4.5"])
def test_a_forwarded_value_that_is_no_address_counts_as_the_proxy_that_wrote_it(
        nonsense: str) -> None:
    assert via_proxy(nonsense) == "addr:127.0.0.1"
    # what the client put to the left of it is not believed either
    assert via_proxy(f"6.6.6.6, {nonsense}") == "addr:127.0.0.1"
    # written by a second trusted proxy: that proxy is the client
    assert via_proxy(f"6.6.6.6, {nonsense}, 10.1.2.3") == "addr:10.1.2.3"


def test_a_trusted_proxy_is_trusted_however_its_address_is_written() -> None:
    assert via_proxy("10.0.0.7", peer="::ffff:127.0.0.1") == "addr:10.0.0.7"
    assert "::ffff:10.1.9.9" in PROXY and "[10.1.9.9]:80" in PROXY and "nonsense" not in PROXY
    assert via_proxy("10.0.0.7", peer="192.0.2.1") == "addr:192.0.2.1"  # not a proxy


def test_the_address_rule_is_total() -> None:
    assert parse_address("0010.0.0.7") is None  # four digits are no octet
    assert client_key("not an address") is None
    assert client_identity({"type": "http", "headers": []}) == "addr:unknown"  # a Unix socket


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    started = start_relay(config, jupyter=False, name="relay-hostile-identity",
                          limits=Limits(requests_per_minute=2), trusted_proxies=["127.0.0.1"])
    yield started
    started.stop()


def test_respelling_an_address_buys_no_new_quota(relay: Relay, offline: OfflineProvider
                                                  ) -> None:
    def ask(forwarded: str) -> int:
        return httpx.post(relay.url + "api/chat/stream", json={"question": "hi"}, timeout=30,
                          headers={"X-Forwarded-For": forwarded}).status_code

    assert [ask(f) for f in ["10.0.0.7", "::ffff:10.0.0.7", "010.0.0.7", "[10.0.0.7]",
                             "10.0.0.7:1234"]] == [200, 200, 429, 429, 429]
    assert [ask(f) for f in ["nonsense", "garbage", "_hidden"]] == [200, 200, 429]
    assert [ask(f) for f in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]] == [200, 200, 429]
    assert ask("10.0.0.8") == 200  # another client's quota is its own
    assert offline.stats()["streams"] == 7  # no refused request reached the provider
