"""Rate limits: a token bucket per API token, and a failed-authentication throttle per peer.

A token's bucket refills at ``rate_per_minute`` and holds at most ``rate_burst``; an empty
bucket answers 429 with ``Retry-After`` and never touches another token's bucket (C1). Failed
authentications are counted per peer address; once a peer spends ``failed_auth_per_minute``
it gets 429 until its bucket refills, so a guessing client is throttled without locking the
entity it targets out (C2). The peer is the socket address; ``X-Forwarded-For`` is read only
when the socket address is one of ``trusted_proxies`` (C3). Buckets live in this process.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

MAX_BUCKETS = 100_000


class TokenBuckets:
    """Token buckets by key, bounded in number (least recently used dropped first)."""

    def __init__(self, per_minute: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(per_minute, 0.001) / 60.0
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` from ``key``'s bucket: 0 if allowed, else seconds until it would be."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens < cost:
                self._store(key, tokens, now)
                return (cost - tokens) / self.rate
            self._store(key, tokens - cost, now)
            return 0.0

    def exhausted(self, key: str) -> float:
        """Seconds until ``key`` may spend one token, without spending (0 when it may)."""
        with self._lock:
            tokens = self._level(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` value in whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


class PeerResolver:
    """The client address of a request, honouring ``X-Forwarded-For`` only from proxies."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def peer(self, client: tuple[str, int] | None, headers: Mapping[str, str]) -> str:
        """The socket peer, or the nearest untrusted hop of ``X-Forwarded-For`` behind proxies."""
        address = client[0] if client else "unknown"
        if not self._trusted or not self._is_trusted(address):
            return address
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return address
        return address
