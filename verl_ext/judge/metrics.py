"""Per-step judge counters and latencies, popped by the reward manager into verl's metrics."""

from __future__ import annotations

import collections
import collections.abc
import math

COUNTERS = (
    "judgements",
    "requests",
    "llm_verdicts",
    "dedup_hits",
    "cache_hits",
    "cache_hits_disk",
    "short_circuits",
    "errors",
    "retries",
    "malformed",
    "timeouts",
    "connection_errors",
    "http_5xx",
    "http_429",
    "http_4xx",
    "breaker_opens",
    "failovers",
    "degraded",
    "cache_write_errors",
)


#: Latencies kept between two pops (the most recent ones), so memory stays bounded.
MAX_LATENCIES = 100_000


def percentile(values: "collections.abc.Iterable[float]", q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]); 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class JudgeMetrics:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.latencies: collections.deque[float] = collections.deque(maxlen=MAX_LATENCIES)

    def add(self, name: str) -> None:
        self.counts[name] += 1

    def pop(self, gauges: dict[str, float]) -> dict[str, float]:
        """All counters (zeros included, so keys are constant), latency p50/p95, then reset."""
        out = {f"judge/{name}": float(self.counts.get(name, 0)) for name in COUNTERS}
        out["judge/latency_p50_s"] = percentile(self.latencies, 50)
        out["judge/latency_p95_s"] = percentile(self.latencies, 95)
        out.update({f"judge/{k}": float(v) for k, v in gauges.items()})
        self.counts.clear()
        self.latencies.clear()
        return out
