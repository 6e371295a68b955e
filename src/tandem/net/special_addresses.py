"""Which IP addresses are globally reachable: tandem's own copy of the IANA registries.

The SSRF guard (`tandem.net.safe_fetch`) fetches only from globally reachable addresses. It
used to ask the standard library (`is_global`, `is_private`), whose tables differ between
Python patch releases: on 3.11.7, 192.0.0.192 (inside 192.0.0.0/24, IETF protocol
assignments) was "global". The tables below are the IANA IPv4 and IPv6 Special-Purpose Address
Registries (RFC 6890), every entry, with the RFC it comes from and its "Globally Reachable"
column, plus the few blocks that live in other registries (multicast, IPv6 site-local, and
IPv6 outside global unicast).

The rule: an address is globally reachable only when no entry that is not globally reachable
holds it. A reachable entry inside an unreachable one (192.0.0.9, PCP anycast, inside
192.0.0.0/24) is therefore refused: there is nothing to fetch there, and the stricter reading
needs no notion of "most specific". IPv6 forms that carry an IPv4 address and route to it
(6to4, 2002::/16, and well-known NAT64, 64:ff9b::/96) are as reachable as that address; the
other forms (IPv4-mapped, IPv4-compatible, Teredo, local-use NAT64) sit in entries that are
not globally reachable and are refused whatever they carry.

Registries as of 2025 (iana-ipv4-special-registry, iana-ipv6-special-registry); a new entry
means a new row here, and a row in tests/security/test_ssrf_ranges.py.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class SpecialRange:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    name: str
    source: str  # the RFC(s) the registry cites
    # The registry's "Globally Reachable" column; None where it says N/A (6to4, Teredo:
    # reachable as the IPv4 address they carry).
    globally_reachable: bool | None


def _v4(cidr: str, name: str, source: str, reachable: bool | None) -> SpecialRange:
    return SpecialRange(ipaddress.IPv4Network(cidr), name, source, reachable)


def _v6(cidr: str, name: str, source: str, reachable: bool | None) -> SpecialRange:
    return SpecialRange(ipaddress.IPv6Network(cidr), name, source, reachable)


IPV4_SPECIAL = (
    _v4("0.0.0.0/8", '"This network"', "RFC 791, section 3.2", False),
    _v4("0.0.0.0/32", '"This host on this network"', "RFC 1122, section 3.2.1.3", False),
    _v4("10.0.0.0/8", "Private-Use", "RFC 1918", False),
    _v4("100.64.0.0/10", "Shared Address Space", "RFC 6598", False),
    _v4("127.0.0.0/8", "Loopback", "RFC 1122, section 3.2.1.3", False),
    _v4("169.254.0.0/16", "Link Local", "RFC 3927", False),
    _v4("172.16.0.0/12", "Private-Use", "RFC 1918", False),
    _v4("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890, section 2.1", False),
    _v4("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False),
    _v4("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    _v4("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True),
    _v4("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    _v4("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880; RFC 7050, section 2.2", False),
    _v4("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880; RFC 7050, section 2.2", False),
    _v4("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False),
    _v4("192.31.196.0/24", "AS112-v4", "RFC 7535", True),
    _v4("192.52.193.0/24", "AMT", "RFC 7450", True),
    # Deprecated, its columns N/A: refused, since no one should be reached through it now.
    _v4("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", False),
    _v4("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False),
    _v4("192.168.0.0/16", "Private-Use", "RFC 1918", False),
    _v4("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True),
    _v4("198.18.0.0/15", "Benchmarking", "RFC 2544", False),
    _v4("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False),
    _v4("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False),
    _v4("240.0.0.0/4", "Reserved", "RFC 1112, section 4", False),
    _v4("255.255.255.255/32", "Limited Broadcast", "RFC 8190; RFC 919, section 7", False),
    # Not in the special-purpose registry (the multicast registry has it): never a web server.
    _v4("224.0.0.0/4", "Multicast", "RFC 5771", False),
)

IPV6_SPECIAL = (
    _v6("::1/128", "Loopback Address", "RFC 4291", False),
    _v6("::/128", "Unspecified Address", "RFC 4291", False),
    _v6("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False),
    _v6("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True),
    _v6("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", False),
    _v6("100::/64", "Discard-Only Address Block", "RFC 6666", False),
    _v6("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False),
    _v6("2001::/23", "IETF Protocol Assignments", "RFC 2928", False),
    _v6("2001::/32", "TEREDO", "RFC 4380; RFC 8190", None),
    _v6("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True),
    _v6("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    _v6("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True),
    _v6("2001:2::/48", "Benchmarking", "RFC 5180; RFC Errata 1752", False),
    _v6("2001:3::/32", "AMT", "RFC 7450", True),
    _v6("2001:4:112::/48", "AS112-v6", "RFC 7535", True),
    _v6("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", False),
    _v6("2001:20::/28", "ORCHIDv2", "RFC 7343", True),
    _v6("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", True),
    _v6("2001:db8::/32", "Documentation", "RFC 3849", False),
    _v6("2002::/16", "6to4", "RFC 3056", None),
    _v6("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True),
    _v6("3fff::/20", "Documentation", "RFC 9637", False),
    _v6("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False),
    _v6("fc00::/7", "Unique-Local", "RFC 4193; RFC 8190", False),
    _v6("fe80::/10", "Link-Local Unicast", "RFC 4291", False),
    # Not in the special-purpose registry:
    _v6("fec0::/10", "Site-Local (deprecated, still routed in places)", "RFC 3879", False),
    _v6("ff00::/8", "Multicast", "RFC 4291, section 2.7", False),
)

# Only this block is allocated for global unicast (IANA IPv6 Address Space, RFC 4291 section
# 2.4); the rest of the IPv6 space is reserved. Special entries outside it that are globally
# reachable (64:ff9b::/96) are let through by their own row.
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_6TO4 = ipaddress.IPv6Network("2002::/16")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def special_ranges(ip: IPAddress) -> list[SpecialRange]:
    """Every registry entry that holds `ip`."""
    table = IPV4_SPECIAL if ip.version == 4 else IPV6_SPECIAL
    return [entry for entry in table if ip in entry.network]


def globally_reachable(ip: IPAddress) -> bool:
    """True only when no entry that is not globally reachable holds `ip` (and, for the IPv6
    forms that route to an IPv4 address, when that address is globally reachable too)."""
    entries = special_ranges(ip)
    if any(entry.globally_reachable is False for entry in entries):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _6TO4:
            return globally_reachable(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
        if ip in _NAT64:
            return globally_reachable(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip not in IPV6_GLOBAL_UNICAST:
            return False
    return True
