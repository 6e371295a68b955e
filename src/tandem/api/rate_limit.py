"""Rate limits on what is expensive or guessable: generation (per user and per API key) and
log-in (per account and per client address). Token buckets held in this process.

    limiter = RateLimiter()
    wait_s = limiter.take([(RateLimit(10, 60), ("login-account", email))])   # 0.0: go ahead

Per process by design: a deployment with N workers admits up to N times each limit, and a
restart forgets the buckets. That bounds brute force and runaway clients, which is the point;
a multi-worker deployment that needs exact shared limits puts them in its reverse proxy.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Sequence

from fastapi import Depends, Request

from tandem.api.deps import CurrentUser
from tandem.api.errors import ApiError
from tandem.core.settings import RateLimit
from tandem.store.users import sha256_hex

Bucket = tuple[str, ...]
# Buckets that have refilled are forgotten once there are this many, so memory stays bounded.
MAX_BUCKETS = 100_000


class RateLimiter:
    """Token buckets keyed by tuples; `clock` is replaceable so tests need not sleep."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()  # sync routes run in a thread pool
        self._buckets: dict[Bucket, tuple[float, float]] = {}  # key -> (tokens, updated at)

    def take(self, limits: Sequence[tuple[RateLimit | None, Bucket]]) -> float:
        """One token from every bucket named, all or none: 0.0 when taken, else the seconds
        until every one of them has a token again."""
        now = self.clock()
        with self._lock:
            levels = []
            wait = 0.0
            for rate, key in limits:
                if rate is None:
                    continue
                per_s = rate.count / rate.period_s
                tokens, updated = self._buckets.get(key, (float(rate.count), now))
                tokens = min(float(rate.count), tokens + (now - updated) * per_s)
                levels.append((key, tokens))
                if tokens < 1:
                    wait = max(wait, (1 - tokens) / per_s)
            if wait > 0:
                return wait
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            for key, tokens in levels:
                self._buckets[key] = (tokens - 1, now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        # A bucket untouched for an hour has refilled under any sane rate; dropping it is free.
        stale = [k for k, (_, updated) in self._buckets.items() if now - updated > 3600]
        for key in stale or list(self._buckets)[: MAX_BUCKETS // 10]:
            del self._buckets[key]


def rate_limited(wait_s: float, what: str) -> ApiError:
    retry = max(1, math.ceil(wait_s))
    return ApiError(
        429,
        f"too many {what}; try again in {retry} s",
        "rate_limit_exceeded",
        headers={"Retry-After": str(retry)},
    )


def client_address(request: Request) -> str:
    """The client's IP address: the socket peer, unless the peer is a trusted proxy
    (TANDEM_TRUSTED_PROXIES); then the right-most X-Forwarded-For entry that is not one.
    The left-most entries are whatever the client wrote, so they are never believed."""
    peer = request.client.host if request.client else "unknown"
    trusted = [ipaddress.ip_network(n) for n in request.app.state.settings.trusted_proxies]
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def check_login_rate(request: Request, email: str) -> None:
    """Before a password is checked: per account (guessing one password) and per client
    address (spraying many accounts). Every attempt counts, right or wrong."""
    settings = request.app.state.settings
    wait = request.app.state.rate_limiter.take(
        [
            (settings.rate_login_per_account, ("login-account", email.strip().lower())),
            (settings.rate_login_per_ip, ("login-ip", client_address(request))),
        ]
    )
    if wait:
        raise rate_limited(wait, "log-in attempts")


def take_generation(request: Request, user: CurrentUser) -> None:
    """A dependency for every route that asks a model for an answer. The user's bucket is
    shared by all their keys and sessions (minting keys does not raise it); a request made
    with an API key also takes from that key's own, smaller bucket, so one runaway script
    leaves room for the user's other clients."""
    settings = request.app.state.settings
    limits: list[tuple[RateLimit | None, Bucket]] = [
        (settings.rate_generation, ("generation-user", user.id))
    ]
    credential = getattr(request.state, "credential", None)
    if credential is not None and credential[0] == "key":
        limits.append(
            (settings.rate_generation_per_key, ("generation-key", sha256_hex(credential[1])))
        )
    wait = request.app.state.rate_limiter.take(limits)
    if wait:
        raise rate_limited(wait, "requests for answers")


# `dependencies=[GenerationQuota]` on a route that generates.
GenerationQuota = Depends(take_generation)
