"""The SSRF guard's address rules, range by range, independent of Python's own tables.

The attack: `192.0.0.192` (inside 192.0.0.0/24, IETF protocol assignments, not globally
reachable) was fetched as public on Python 3.11.7, because the guard trusted the standard
library's `is_global`/`is_private`, whose tables change between patch releases. The guard now
carries its own copy of the IANA IPv4 and IPv6 Special-Purpose Address Registries; an address
is fetchable only when no entry that is not globally reachable holds it.

The ranges below are transcribed again here from the registries (not imported from the code),
so a mistake in either copy fails. For each range that is not globally reachable: its first
and last address are refused, so are the IPv4 ones embedded in every IPv6 form that routes to
them, and a neighbour just outside is allowed where that neighbour is itself public.

    .venv/bin/python -m pytest -q tests/security/test_ssrf_ranges.py
"""

from __future__ import annotations

import ipaddress

import pytest

from tandem.net.safe_fetch import FetchRefused, checked_addresses, is_public_address

# (range, neighbour below, neighbour above): the neighbours are public addresses (None where
# the neighbour is itself special, so the boundary says nothing).
IPV4_NOT_GLOBAL = [
    ("0.0.0.0/8", None, "1.0.0.0"),  # "this network", RFC 791
    ("0.0.0.0/32", None, None),  # "this host on this network", RFC 1122
    ("10.0.0.0/8", "9.255.255.255", "11.0.0.0"),  # private use, RFC 1918
    ("100.64.0.0/10", "100.63.255.255", "100.128.0.0"),  # shared address space, RFC 6598
    ("127.0.0.0/8", "126.255.255.255", "128.0.0.0"),  # loopback, RFC 1122
    ("169.254.0.0/16", "169.253.255.255", "169.255.0.0"),  # link local, RFC 3927
    ("172.16.0.0/12", "172.15.255.255", "172.32.0.0"),  # private use, RFC 1918
    ("192.0.0.0/24", "191.255.255.255", "192.0.1.0"),  # IETF protocol assignments, RFC 6890
    ("192.0.0.0/29", None, None),  # IPv4 service continuity prefix, RFC 7335
    ("192.0.0.8/32", None, None),  # IPv4 dummy address, RFC 7600
    ("192.0.0.170/32", None, None),  # NAT64/DNS64 discovery, RFC 8880
    ("192.0.0.171/32", None, None),  # NAT64/DNS64 discovery, RFC 8880
    ("192.0.2.0/24", "192.0.1.255", "192.0.3.0"),  # documentation (TEST-NET-1), RFC 5737
    ("192.88.99.0/24", "192.88.98.255", "192.88.100.0"),  # deprecated 6to4 relays, RFC 7526
    ("192.168.0.0/16", "192.167.255.255", "192.169.0.0"),  # private use, RFC 1918
    ("198.18.0.0/15", "198.17.255.255", "198.20.0.0"),  # benchmarking, RFC 2544
    ("198.51.100.0/24", "198.51.99.255", "198.51.101.0"),  # documentation, RFC 5737
    ("203.0.113.0/24", "203.0.112.255", "203.0.114.0"),  # documentation, RFC 5737
    ("224.0.0.0/4", "223.255.255.255", None),  # multicast, RFC 5771 (its own registry)
    ("240.0.0.0/4", None, None),  # reserved, RFC 1112
    ("255.255.255.255/32", None, None),  # limited broadcast, RFC 919
]
# Globally reachable entries of the registry, outside any that is not.
IPV4_GLOBAL = ["192.31.196.0/24", "192.52.193.0/24", "192.175.48.0/24"]
# Globally reachable entries inside one that is not: the wider entry wins (nothing to fetch).
IPV4_GLOBAL_INSIDE_SPECIAL = ["192.0.0.9/32", "192.0.0.10/32"]

IPV6_NOT_GLOBAL = [
    ("::1/128", None, None),  # loopback, RFC 4291
    ("::/128", None, None),  # unspecified, RFC 4291
    ("::ffff:0:0/96", None, None),  # IPv4-mapped, RFC 4291
    ("64:ff9b:1::/48", None, None),  # local-use IPv4/IPv6 translation, RFC 8215
    ("100::/64", None, None),  # discard-only, RFC 6666
    ("100:0:0:1::/64", None, None),  # dummy IPv6 prefix, RFC 9780
    ("2001::/23", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"),  # RFC 2928
    ("2001:2::/48", None, None),  # benchmarking, RFC 5180
    ("2001:10::/28", None, None),  # deprecated ORCHID, RFC 4843
    ("2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"),  # RFC 3849
    ("3fff::/20", "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"),  # RFC 9637
    ("5f00::/16", None, None),  # segment routing SIDs, RFC 9602
    ("fc00::/7", None, None),  # unique local, RFC 4193
    ("fe80::/10", None, None),  # link-local unicast, RFC 4291
    ("fec0::/10", None, None),  # deprecated site-local, RFC 3879 (not in the registry)
    ("ff00::/8", None, None),  # multicast, RFC 4291 (its own registry)
]
IPV6_GLOBAL = ["2620:4f:8000::/48"]  # direct delegation AS112 service, RFC 7534
IPV6_GLOBAL_INSIDE_SPECIAL = [  # inside 2001::/23
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:20::/28",
    "2001:30::/28",
]
PUBLIC_V4 = "8.8.8.8"


def _ends(cidr: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    net = ipaddress.ip_network(cidr)
    return [net.network_address, net.broadcast_address]


def _embeddings(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    """Every IPv6 form that routes to (or names) an IPv4 address."""
    n = int(v4)
    teredo_server = int(ipaddress.IPv4Address("65.54.227.120"))
    return {
        "mapped": ipaddress.IPv6Address((0xFFFF << 32) | n),
        "compatible": ipaddress.IPv6Address(n),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1),
        # The Teredo client address is stored inverted in the last 32 bits.
        "teredo": ipaddress.IPv6Address(
            (0x20010000 << 96) | (teredo_server << 64) | (n ^ 0xFFFFFFFF)
        ),
        "nat64": ipaddress.IPv6Address((0x0064FF9B << 96) | n),
        "nat64 local": ipaddress.IPv6Address((0x0064FF9B0001 << 80) | n),
    }


def _ids(rows):
    return [row[0] for row in rows]


def test_the_address_that_escaped_is_refused():
    assert not is_public_address(ipaddress.ip_address("192.0.0.192"))


@pytest.mark.parametrize(("cidr", "below", "above"), IPV4_NOT_GLOBAL, ids=_ids(IPV4_NOT_GLOBAL))
def test_ipv4_ranges_that_are_not_globally_reachable(cidr, below, above):
    for address in _ends(cidr):
        assert not is_public_address(address), address
        for form, embedded in _embeddings(address).items():
            assert not is_public_address(embedded), (address, form, embedded)
    for neighbour in (below, above):
        if neighbour is not None:
            assert is_public_address(ipaddress.ip_address(neighbour)), neighbour


@pytest.mark.parametrize(("cidr", "below", "above"), IPV6_NOT_GLOBAL, ids=_ids(IPV6_NOT_GLOBAL))
def test_ipv6_ranges_that_are_not_globally_reachable(cidr, below, above):
    for address in _ends(cidr):
        assert not is_public_address(address), address
    for neighbour in (below, above):
        if neighbour is not None:
            assert is_public_address(ipaddress.ip_address(neighbour)), neighbour


@pytest.mark.parametrize("cidr", IPV4_GLOBAL + IPV6_GLOBAL)
def test_globally_reachable_registry_entries_are_fetchable(cidr):
    for address in _ends(cidr):
        assert is_public_address(address), address


@pytest.mark.parametrize("cidr", IPV4_GLOBAL_INSIDE_SPECIAL + IPV6_GLOBAL_INSIDE_SPECIAL)
def test_a_reachable_entry_inside_an_unreachable_one_is_refused(cidr):
    for address in _ends(cidr):
        assert not is_public_address(address), address


def test_ipv6_forms_of_a_public_ipv4_address_follow_the_registry():
    forms = _embeddings(ipaddress.IPv4Address(PUBLIC_V4))
    # 6to4 (2002::/16) and well-known NAT64 (64:ff9b::/96) reach the address they embed.
    assert is_public_address(forms["6to4"]) and is_public_address(forms["nat64"])
    # The others sit in entries that are not globally reachable whatever they carry.
    for form in ("mapped", "compatible", "teredo", "nat64 local"):
        assert not is_public_address(forms[form]), form


@pytest.mark.parametrize("address", ["4000::1", "::2", "1::1", "e000::1", "2000::"])
def test_ipv6_outside_global_unicast_is_refused_and_inside_it_is_not(address):
    # Only 2000::/3 is allocated for global unicast (IANA IPv6 Address Space, RFC 4291).
    expected = address == "2000::"
    assert is_public_address(ipaddress.ip_address(address)) is expected


@pytest.mark.anyio
async def test_a_name_resolving_into_a_registry_range_is_refused(monkeypatch):
    from tandem.net import safe_fetch

    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: ["192.0.0.192"])
    with pytest.raises(FetchRefused, match="resolves to a private address"):
        await checked_addresses("ietf-assignment.test", 80, safe_fetch.Allowlist())


@pytest.fixture
def anyio_backend():
    return "asyncio"
