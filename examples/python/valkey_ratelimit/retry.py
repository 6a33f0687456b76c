"""Retries with jittered exponential backoff for transient Valkey errors.

Full jitter (a delay drawn uniformly between 0 and the exponential ceiling) spreads the
retries of many clients that failed at the same moment, so a Valkey that comes back is not
hit by all of them in step.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from valkey.exceptions import AuthenticationError
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

T = TypeVar("T")

logger = logging.getLogger("valkey_ratelimit")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ValkeyConnectionError,
    ValkeyTimeoutError,
    ConnectionError,
    TimeoutError,
)
"""Errors worth another attempt: the connection failed or the reply did not come in time."""


def is_transient(error: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    """Tell whether another attempt may succeed.

    valkey-py raises a wrong password as a ConnectionError, but no retry can fix it.
    """
    return isinstance(error, retry_on) and not isinstance(error, AuthenticationError)


def backoff_delay(attempt: int, base_delay: float, max_delay: float, rng: random.Random) -> float:
    """Draw the delay before retry number ``attempt`` (from 1): uniform in [0, ceiling].

    The ceiling doubles with each attempt from ``base_delay`` and stops at ``max_delay``.
    """
    ceiling = min(max_delay, base_delay * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


async def retry_with_backoff(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.01,
    max_delay: float = 0.2,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await ``operation()`` up to ``attempts`` times, sleeping a jittered delay between tries.

    Only errors in ``retry_on`` are retried; any other error, and the last transient one,
    propagates. A rate-limit command whose reply was lost may have been charged already, so
    a retry can charge one request twice. That errs towards denying, never towards allowing.
    ``sleep`` and ``rng`` are parameters so tests can run without waiting.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1; got {attempts}")
    if base_delay < 0 or max_delay < 0:
        raise ValueError(f"delays must not be negative; got {base_delay} and {max_delay}")
    generator = rng if rng is not None else random.Random()

    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as error:
            if attempt == attempts or not is_transient(error, retry_on):
                raise
            delay = backoff_delay(attempt, base_delay, max_delay, generator)
            logger.info(
                "Valkey call failed on attempt %d of %d with %r; retrying in %.3f s",
                attempt,
                attempts,
                error,
                delay,
                extra={"error": repr(error), "attempt": attempt, "delay_seconds": delay},
            )
            await sleep(delay)

    raise AssertionError("unreachable: the last attempt returns or raises")
