"""Per-step judge counters and latencies, popped by the reward manager into verl's metrics."""

from __future__ import annotations

import collections
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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class JudgeMetrics:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.latencies: list[float] = []

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def pop(self, gauges: dict[str, float]) -> dict[str, float]:
        """All counters (zeros included, so keys are constant), latency p50/p95, then reset."""
        out = {f"judge/{name}": float(self.counts.get(name, 0)) for name in COUNTERS}
        out["judge/latency_p50_s"] = percentile(self.latencies, 50)
        out["judge/latency_p95_s"] = percentile(self.latencies, 95)
        out.update({f"judge/{k}": float(v) for k, v in gauges.items()})
        self.counts.clear()
        self.latencies = []
        return out
