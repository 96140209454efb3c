"""Judge endpoints with a circuit breaker each, and the choice of where a request goes.

A breaker opens after ``failures_to_open`` consecutive failures; while open the endpoint gets
no requests. After ``cooldown_s`` one probe request is let through (half open): its success
closes the breaker, its failure opens it again. Requests go to the available endpoint with the
fewest requests in flight (round robin among ties), and a retry avoids the endpoint that just
failed when another is available: that is the load balancing and the failover.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Optional, Sequence

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failures_to_open: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0

    def available(self) -> bool:
        """Whether a request may be sent now (a half-open breaker admits one probe at a time)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return self.clock() >= self.opened_at + self.cooldown_s
        return False

    def on_send(self) -> None:
        if self.state == OPEN:
            self.state = HALF_OPEN

    def on_success(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        reopened = self.state != CLOSED
        self.state = CLOSED
        self.consecutive_failures = 0
        return reopened

    def on_failure(self) -> bool:
        """Record a failure; True when this opened the breaker."""
        self.consecutive_failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.consecutive_failures >= self.failures_to_open):
            was_closed = self.state == CLOSED
            self.state = OPEN
            self.opened_at = self.clock()
            return was_closed
        return False

    def on_abandon(self) -> None:
        """A probe ended without an answer either way (cancelled): let another probe through."""
        if self.state == HALF_OPEN:
            self.state = OPEN

    def seconds_until_probe(self) -> float:
        if self.state == CLOSED:
            return 0.0
        if self.state == HALF_OPEN:
            return min(0.05, self.cooldown_s) or 0.001
        return max(0.0, self.opened_at + self.cooldown_s - self.clock())


class Endpoint:
    """One base URL (``http://host:8000/v1``)."""

    def __init__(self, base_url: str, breaker: CircuitBreaker) -> None:
        self.base_url = base_url
        self.chat_url = f"{base_url}/chat/completions"
        self.breaker = breaker
        self.in_flight = 0


class EndpointPool:
    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self._turn = itertools.count()

    def acquire(self, avoid: Optional[Endpoint] = None) -> Optional[Endpoint]:
        """An endpoint to send to now, marked as used, or ``None`` when every breaker is open."""
        ready = [e for e in self.endpoints if e.breaker.available()]
        if not ready:
            return None
        if avoid is not None and len(ready) > 1:
            ready = [e for e in ready if e is not avoid] or ready
        start = next(self._turn) % len(ready)
        rotated = ready[start:] + ready[:start]
        chosen = min(rotated, key=lambda e: e.in_flight)
        chosen.breaker.on_send()
        chosen.in_flight += 1
        return chosen

    def release(self, endpoint: Endpoint) -> None:
        endpoint.in_flight -= 1

    def seconds_until_probe(self) -> float:
        return min(e.breaker.seconds_until_probe() for e in self.endpoints)

    def open_count(self) -> int:
        return sum(e.breaker.state != CLOSED for e in self.endpoints)
