"""Rate-limit policies and the command arguments they render.

Each policy is a small frozen dataclass that validates its parameters on creation, so a bad
limit or window fails where it is written instead of as a server error on the first request.
Durations are sent to the module as whole milliseconds (``"1500ms"``) because that is the
module's resolution and the one unit that needs no rounding on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar, Union

Duration = Union[int, float, timedelta]
"""A duration in seconds (int or float) or a ``timedelta``."""

MAX_COUNT = 2**63 - 1
"""The largest count the module accepts (limit, capacity, burst, tokens, cost)."""

MAX_DURATION_MS = 3_153_600_000_000
"""The maximum duration the module accepts: 100 years of 365 days, in milliseconds."""


def duration_ms(value: Duration, name: str) -> int:
    """Convert a duration to whole milliseconds, dropping finer digits as the module does.

    Floats go through their shortest decimal form, so ``4.35`` seconds is 4350 ms and not the
    4349 ms that binary floating point would give.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be seconds or a timedelta; got {value!r}")

    if isinstance(value, timedelta):
        milliseconds = value // timedelta(milliseconds=1)
    elif isinstance(value, int):
        milliseconds = value * 1000
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite duration; got {value!r}")
        milliseconds = int(Decimal(repr(value)) * 1000)
    else:
        raise TypeError(f"{name} must be seconds or a timedelta; got {value!r}")

    if milliseconds < 1:
        raise ValueError(f"{name} must be at least 1 ms; got {value!r}")
    if milliseconds > MAX_DURATION_MS:
        raise ValueError(f"{name} must be at most 100 years ({MAX_DURATION_MS} ms); got {value!r}")
    return milliseconds


def check_count(value: int, name: str) -> int:
    """Validate a count against the module's range: an integer from 1 to 2^63-1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if not 1 <= value <= MAX_COUNT:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_COUNT}; got {value}")
    return value


def render_ms(milliseconds: int) -> str:
    """Render milliseconds in the module's duration syntax."""
    return f"{milliseconds}ms"


def ceil_seconds(milliseconds: int) -> int:
    """Round milliseconds up to whole seconds, as HTTP fields that count seconds need."""
    return -(-milliseconds // 1000)


@dataclass(frozen=True)
class Policy:
    """Base of the policies: the command, the algorithm word and the rendered parameters."""

    command: ClassVar[str]
    """The single-limiter command, such as ``RL.FIXED``."""

    algorithm: ClassVar[str]
    """The algorithm word that RL.ALL and RL.WAIT take, such as ``FIXED``."""

    accepts_cost: ClassVar[bool] = True
    """Whether the single-limiter command takes ``COST n``."""

    combinable: ClassVar[bool] = True
    """Whether RL.ALL and RL.WAIT accept this algorithm."""

    def parameters(self) -> list[str]:
        """Render the positional parameters that follow the key."""
        raise NotImplementedError

    def options(self) -> list[str]:
        """Render the options that belong to the policy itself (not COST or PEEK)."""
        return []

    @property
    def quota(self) -> int:
        """Units the policy allows at once: the ``q`` of a RateLimit-Policy header."""
        raise NotImplementedError

    @property
    def window_ms(self) -> int:
        """Time in which the policy renews its whole quota, in milliseconds."""
        raise NotImplementedError

    @property
    def window_seconds(self) -> int:
        """The window rounded up to whole seconds, at least 1: the ``w`` of RateLimit-Policy."""
        return max(1, ceil_seconds(self.window_ms))


@dataclass(frozen=True)
class FixedWindow(Policy):
    """At most ``limit`` units per window; the window opens with the first allowed request."""

    limit: int
    window: Duration

    command: ClassVar[str] = "RL.FIXED"
    algorithm: ClassVar[str] = "FIXED"

    def __post_init__(self) -> None:
        check_count(self.limit, "limit")
        duration_ms(self.window, "window")

    def parameters(self) -> list[str]:
        return [str(self.limit), render_ms(self.window_ms)]

    @property
    def quota(self) -> int:
        return self.limit

    @property
    def window_ms(self) -> int:
        return duration_ms(self.window, "window")


@dataclass(frozen=True)
class SlidingWindow(Policy):
    """At most ``limit`` units in any ``window`` ending now.

    ``precision`` groups the log into buckets of that length, which bounds the memory of huge
    limits at the price of entries leaving the window up to one bucket early.
    """

    limit: int
    window: Duration
    precision: Duration | None = None

    command: ClassVar[str] = "RL.SLIDING"
    algorithm: ClassVar[str] = "SLIDING"

    def __post_init__(self) -> None:
        check_count(self.limit, "limit")
        window_ms = duration_ms(self.window, "window")
        if self.precision is not None:
            precision_ms = duration_ms(self.precision, "precision")
            if precision_ms > window_ms:
                raise ValueError(
                    f"precision must not exceed the window ({window_ms} ms); got {precision_ms} ms"
                )

    def parameters(self) -> list[str]:
        return [str(self.limit), render_ms(self.window_ms)]

    def options(self) -> list[str]:
        if self.precision is None:
            return []
        return ["PRECISION", render_ms(duration_ms(self.precision, "precision"))]

    @property
    def quota(self) -> int:
        return self.limit

    @property
    def window_ms(self) -> int:
        return duration_ms(self.window, "window")


class _Refilling(Policy):
    """Base of the token bucket and GCRA: a quota refilled at ``tokens`` per ``period``.

    Subclasses name their quota field in ``quota_field``; the field order of each dataclass
    stays the module's argument order.
    """

    tokens: int
    period: Duration
    quota_field: ClassVar[str]

    def __post_init__(self) -> None:
        check_count(self.quota, self.quota_field)
        check_count(self.tokens, "tokens")
        duration_ms(self.period, "period")

    def parameters(self) -> list[str]:
        return [str(self.quota), str(self.tokens), render_ms(self.period_ms)]

    @property
    def period_ms(self) -> int:
        return duration_ms(self.period, "period")

    @property
    def quota(self) -> int:
        return getattr(self, self.quota_field)

    @property
    def window_ms(self) -> int:
        # An empty quota is whole again after quota / tokens periods.
        return -(-self.quota * self.period_ms // self.tokens)


@dataclass(frozen=True)
class TokenBucket(_Refilling):
    """A bucket of ``capacity`` tokens, full when new, refilled at ``tokens`` per ``period``."""

    capacity: int
    tokens: int
    period: Duration

    command: ClassVar[str] = "RL.TOKENBUCKET"
    algorithm: ClassVar[str] = "TOKENBUCKET"
    quota_field: ClassVar[str] = "capacity"


@dataclass(frozen=True)
class Gcra(_Refilling):
    """A steady ``tokens`` per ``period`` with up to ``burst`` requests back to back."""

    burst: int
    tokens: int
    period: Duration

    command: ClassVar[str] = "RL.GCRA"
    algorithm: ClassVar[str] = "GCRA"
    quota_field: ClassVar[str] = "burst"


@dataclass(frozen=True)
class Throttle(Policy):
    """At most one allowed event per ``interval``."""

    interval: Duration

    command: ClassVar[str] = "RL.THROTTLE"
    algorithm: ClassVar[str] = "THROTTLE"
    accepts_cost: ClassVar[bool] = False

    def __post_init__(self) -> None:
        duration_ms(self.interval, "interval")

    def parameters(self) -> list[str]:
        return [render_ms(self.window_ms)]

    @property
    def quota(self) -> int:
        return 1

    @property
    def window_ms(self) -> int:
        return duration_ms(self.interval, "interval")


@dataclass(frozen=True)
class Debounce(Policy):
    """Allowed only after ``interval`` with no request at all.

    RL.ALL and RL.WAIT reject it, because every request restarts the quiet period.
    """

    interval: Duration

    command: ClassVar[str] = "RL.DEBOUNCE"
    algorithm: ClassVar[str] = "DEBOUNCE"
    accepts_cost: ClassVar[bool] = False
    combinable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        duration_ms(self.interval, "interval")

    def parameters(self) -> list[str]:
        return [render_ms(self.window_ms)]

    @property
    def quota(self) -> int:
        return 1

    @property
    def window_ms(self) -> int:
        return duration_ms(self.interval, "interval")


ALGORITHMS = ("fixed", "sliding", "token_bucket", "gcra", "throttle")
"""The algorithm names that :func:`policy_for` takes."""


def policy_for(algorithm: str, limit: int, window: Duration) -> Policy:
    """Build the policy that allows ``limit`` requests per ``window`` with an algorithm.

    The token bucket and GCRA refill the whole limit over one window, so all five have the
    same long-run rate. A bucket that starts full can also allow a burst of up to ``limit``
    on top of its refill within the first window.
    """
    if algorithm == "fixed":
        return FixedWindow(limit, window)
    if algorithm == "sliding":
        return SlidingWindow(limit, window)
    if algorithm == "token_bucket":
        return TokenBucket(capacity=limit, tokens=limit, period=window)
    if algorithm == "gcra":
        return Gcra(burst=limit, tokens=limit, period=window)
    if algorithm == "throttle":
        if limit != 1:
            message = f"a throttle allows one request per window, so limit must be 1; got {limit}"
            raise ValueError(message)
        return Throttle(window)
    raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}")
