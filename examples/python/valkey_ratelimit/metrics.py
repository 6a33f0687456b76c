"""Prometheus metrics of rate-limit decisions, Valkey errors and decision latency.

The metrics live in the registry the application passes in, or in prometheus_client's global
one by default. Give each instance its own registry when building several, because
prometheus_client refuses to register one metric name twice in a registry.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Histogram buckets around the expected sub-millisecond to 100 ms round trip to Valkey."""

OUTCOMES = ("allowed", "denied", "fail_open", "fail_closed")
"""Decision outcomes. The last two are decisions the outage policy made without Valkey."""

ERROR_KINDS = ("connection", "timeout", "server", "invalid")
"""Valkey failure kinds.

``connection``: refused or dropped. ``timeout``: no reply in time. ``server``: an error reply
that means the server cannot serve now (loading, out of memory, read-only). ``invalid``: an
error reply to a bad request, or a reply of an unexpected shape.
"""


class RateLimitMetrics:
    """The three metric families, labelled by limiter name."""

    def __init__(
        self, registry: CollectorRegistry | None = None, namespace: str = "valkey_ratelimit"
    ) -> None:
        target = registry if registry is not None else REGISTRY
        self.registry = target
        self.decisions = Counter(
            "decisions",
            "Rate-limit decisions by limiter and outcome.",
            ["limiter", "outcome"],
            namespace=namespace,
            registry=target,
        )
        self.errors = Counter(
            "errors",
            "Rate-limit checks that failed at Valkey, by limiter and error kind.",
            ["limiter", "kind"],
            namespace=namespace,
            registry=target,
        )
        self.latency = Histogram(
            "decision_seconds",
            "Time to reach a rate-limit decision, including outage-policy decisions, in seconds.",
            ["limiter"],
            namespace=namespace,
            registry=target,
            buckets=LATENCY_BUCKETS_SECONDS,
        )

    def record_decision(self, limiter: str, outcome: str, seconds: float) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")
        self.decisions.labels(limiter=limiter, outcome=outcome).inc()
        self.latency.labels(limiter=limiter).observe(seconds)

    def record_error(self, limiter: str, kind: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ERROR_KINDS)}; got {kind!r}")
        self.errors.labels(limiter=limiter, kind=kind).inc()
