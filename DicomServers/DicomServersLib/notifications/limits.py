"""Limits of the notification listener, and the per-source rate limiter it uses."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .events import MAX_BODY_BYTES


@dataclass(frozen=True)
class ListenerLimits:
    """What the listener accepts before refusing a request.

    Attributes
    ----------
    max_body_bytes : int
        Largest ``Content-Length``; larger requests get HTTP 413 without their body being read.
    read_timeout_s : float
        Longest silence while reading one request (socket timeout).
    request_deadline_s : float
        Longest time one connection may take in total, however slowly it trickles in
        ("slowloris"): past it the connection is closed.
    max_connections : int
        Connections handled at once; further ones are answered 503 and closed at once.
    rate_per_s : float
        Sustained requests per second accepted from one source address.
    burst : int
        Requests one source may send at once before the rate applies.
    """

    max_body_bytes: int = MAX_BODY_BYTES
    read_timeout_s: float = 5.0
    request_deadline_s: float = 10.0
    max_connections: int = 32
    rate_per_s: float = 200.0
    burst: int = 400


class RateLimiter:
    """Token buckets per source address: ``burst`` requests at once, ``rate_per_s`` sustained.

    Parameters
    ----------
    rate_per_s : float
        Tokens added per second.
    burst : int
        Bucket size.
    clock : callable, optional
        Monotonic clock in seconds.
    max_sources : int, optional
        Buckets kept (least recently used are forgotten).
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 1024,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, source: str) -> bool:
        """Take one token for ``source``; return False when its bucket is empty."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(source, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[source] = (tokens, now)
            self._buckets.move_to_end(source)
            while len(self._buckets) > self._max_sources:
                self._buckets.popitem(last=False)
            return allowed
