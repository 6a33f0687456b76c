"""Rate-limit checks with a deadline, an outage policy, logs and metrics.

This layer is independent of HTTP. It turns a list of (name, key, policy) limits into one
round trip (the single command for one limit, RL.ALL for several) and decides what happens
when Valkey cannot reply in time: allow the request (fail open) or deny it (fail closed).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from valkey.asyncio import Valkey
from valkey.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from .client import Decision, RateLimitClient, ReplyError
from .metrics import RateLimitMetrics
from .policies import Duration, Policy, duration_ms
from .retry import retry_with_backoff

logger = logging.getLogger("valkey_ratelimit")

DEFAULT_TIMEOUT_S = 0.075
"""The deadline of one check, in seconds.

A round trip to a healthy Valkey on the same network takes about a millisecond (an
estimate), so 75 ms trips only on a real outage and adds little to a request's latency.
"""


UNAVAILABLE_ERRORS = (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
)
"""Error replies that mean the server cannot serve now: LOADING, OOM, READONLY, CLUSTERDOWN,
MASTERDOWN and TRYAGAIN."""

UNAVAILABLE_CODES = frozenset({"BUSY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN"})
"""Error codes of the same kind that valkey-py's standalone client raises as a plain
``ResponseError``. Only its cluster client maps the last three to their own classes."""


class FailureMode(enum.Enum):
    """What a check decides when Valkey is unreachable, too slow or unable to serve."""

    OPEN = "open"
    """Allow the request: availability over enforcement."""

    CLOSED = "closed"
    """Deny the request: enforcement over availability."""


@dataclass(frozen=True)
class Limit:
    """One limit applied to one request: its name, the limiter key and the policy."""

    name: str
    key: str
    policy: Policy


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check, from Valkey or from the outage policy."""

    allowed: bool
    limits: tuple[Limit, ...]
    decisions: tuple[Decision, ...]
    """Each limit's own decision in order, or empty when Valkey did not reply."""
    combined: Decision | None
    """The decision of all limits together, or None when Valkey did not reply."""
    error: Exception | None = None
    """The failure the outage policy decided on, if any."""

    @property
    def failed(self) -> bool:
        """Whether the outage policy decided instead of Valkey."""
        return self.error is not None

    @property
    def denied_by(self) -> tuple[Limit, ...]:
        """The limits that denied the request."""
        return tuple(
            limit
            for limit, decision in zip(self.limits, self.decisions)
            if not decision.allowed
        )


class InvalidRequestError(Exception):
    """An error reply to a check, such as WRONGTYPE for a key of another type.

    The outage policy does not cover it, because it is a defect in the limits or the data,
    and failing open or closed would hide it.
    """


def classify_error(error: BaseException) -> str | None:
    """Name the metric kind of a failed call, or None if the error is not about Valkey."""
    if isinstance(error, (ValkeyTimeoutError, TimeoutError)):
        return "timeout"
    # valkey-py raises LOADING as a ConnectionError, so it is checked first.
    if isinstance(error, UNAVAILABLE_ERRORS):
        return "server"
    if isinstance(error, (ValkeyConnectionError, ConnectionError)):
        return "connection"
    if isinstance(error, ResponseError):
        # A plain ResponseError keeps the error code as the first word of its message.
        code = str(error).split(" ", 1)[0]
        return "server" if code in UNAVAILABLE_CODES else "invalid"
    if isinstance(error, ReplyError):
        return "invalid"
    return None


class RateLimiter:
    """Checks limits against Valkey within a deadline, under an outage policy.

    An outage never raises: the check returns the verdict of the failure mode. An error reply
    to a bad request raises :class:`InvalidRequestError`. Each check that fails at Valkey is
    counted in the metrics, and each one the outage policy decides is logged once at warning
    level. Attempts that a retry recovers are logged at info level only.
    """

    def __init__(
        self,
        client: RateLimitClient,
        *,
        failure_mode: FailureMode = FailureMode.OPEN,
        timeout: Duration = DEFAULT_TIMEOUT_S,
        metrics: RateLimitMetrics | None = None,
        attempts: int = 1,
    ) -> None:
        """Create a limiter.

        ``timeout`` bounds the whole check, retries included. ``attempts`` above 1 retries
        connection errors and timeouts inside that deadline, at the risk of charging a
        request twice when only its reply was lost.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1; got {attempts}")
        self.client = client
        self.failure_mode = failure_mode
        self.timeout_s = duration_ms(timeout, "timeout") / 1000
        self.metrics = metrics
        self.attempts = attempts

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        protocol: int = 2,
        failure_mode: FailureMode = FailureMode.OPEN,
        timeout: Duration = DEFAULT_TIMEOUT_S,
        metrics: RateLimitMetrics | None = None,
        attempts: int = 1,
        **valkey_options: Any,
    ) -> RateLimiter:
        """Create a limiter with its own Valkey client whose socket timeouts fit ``timeout``.

        Each attempt gets an equal share of the deadline as its socket timeouts, so that a
        timed-out attempt leaves time for a retry. The client connects on first use, so this
        works before the server is up.
        """
        attempt_timeout_s = duration_ms(timeout, "timeout") / 1000 / max(attempts, 1)
        valkey_options.setdefault("socket_timeout", attempt_timeout_s)
        valkey_options.setdefault("socket_connect_timeout", attempt_timeout_s)
        valkey = Valkey.from_url(url, protocol=protocol, **valkey_options)
        return cls(
            RateLimitClient(valkey),
            failure_mode=failure_mode,
            timeout=timeout,
            metrics=metrics,
            attempts=attempts,
        )

    async def aclose(self) -> None:
        """Close the Valkey client and its connections."""
        await self.client.valkey.aclose()

    async def check(self, limits: Sequence[Limit], *, cost: int = 1, name: str = "") -> Verdict:
        """Charge ``cost`` units to every limit if all allow it, in one round trip.

        ``name`` labels the metrics and logs; it defaults to the limit names joined by "+".
        """
        if not limits:
            raise ValueError("a check needs at least one limit")
        limits = tuple(limits)
        label = name or "+".join(limit.name for limit in limits)
        started = time.perf_counter()

        try:
            async with asyncio.timeout(self.timeout_s):
                verdict = await retry_with_backoff(
                    lambda: self._decide(limits, cost),
                    attempts=self.attempts,
                    base_delay=self.timeout_s / 10,
                    max_delay=self.timeout_s / 2,
                )
        except Exception as error:
            kind = classify_error(error)
            if kind is None:
                raise
            self._record_error(label, kind)
            if kind == "invalid":
                raise InvalidRequestError(f"rate limit check {label!r} failed: {error}") from error
            verdict = self._decide_without_valkey(limits, label, kind, error)
            outcome = "fail_open" if verdict.allowed else "fail_closed"
        else:
            outcome = "allowed" if verdict.allowed else "denied"

        if self.metrics is not None:
            self.metrics.record_decision(label, outcome, time.perf_counter() - started)
        return verdict

    async def _decide(self, limits: tuple[Limit, ...], cost: int) -> Verdict:
        if len(limits) == 1:
            decision = await self.client.decide(limits[0].key, limits[0].policy, cost=cost)
            return Verdict(decision.allowed, limits, (decision,), decision)

        pairs = [(limit.key, limit.policy) for limit in limits]
        result = await self.client.all(pairs, cost=cost)
        return Verdict(result.allowed, limits, result.decisions, result.combined)

    def _record_error(self, label: str, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_error(label, kind)

    def _decide_without_valkey(
        self, limits: tuple[Limit, ...], label: str, kind: str, error: Exception
    ) -> Verdict:
        allowed = self.failure_mode is FailureMode.OPEN
        keys = ",".join(limit.key for limit in limits)
        policies = ",".join(limit.name for limit in limits)
        action = "allowing" if allowed else "denying"
        # asyncio's own timeout carries no message, so name it for the reader of the log.
        if isinstance(error, TimeoutError) and not str(error):
            error_text = f"no reply within {self.timeout_s} s"
        else:
            error_text = repr(error)
        logger.warning(
            "rate limit check %s on key %s failed (%s: %s); %s the request (fail %s)",
            label,
            keys,
            kind,
            error_text,
            action,
            self.failure_mode.value,
            extra={
                "error": error_text,
                "error_kind": kind,
                "key": keys,
                "policy": policies,
                "limiter": label,
                "failure_mode": self.failure_mode.value,
            },
        )
        return Verdict(allowed, limits, (), None, error)
