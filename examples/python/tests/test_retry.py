"""retry_with_backoff with a fake sleep: delays are jittered, capped and bounded in number."""

from __future__ import annotations

import random

import pytest
from valkey.exceptions import AuthenticationError
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from valkey_ratelimit import retry_with_backoff


class FakeSleep:
    """Records the delays it is asked to sleep, and sleeps none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class CeilingRandom(random.Random):
    """Draws the top of every range, which exposes the delay ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Flaky:
    """Fails with ``error`` for the first ``failures`` calls, then returns "done"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


async def test_returns_after_transient_errors() -> None:
    sleep = FakeSleep()
    operation = Flaky(2, ValkeyConnectionError("refused"))

    result = await retry_with_backoff(operation, attempts=4, sleep=sleep)

    assert result == "done"
    assert operation.calls == 3
    assert len(sleep.delays) == 2


async def test_attempts_are_bounded() -> None:
    sleep = FakeSleep()
    operation = Flaky(100, ValkeyTimeoutError("slow"))

    with pytest.raises(ValkeyTimeoutError):
        await retry_with_backoff(operation, attempts=5, sleep=sleep)

    assert operation.calls == 5
    assert len(sleep.delays) == 4


async def test_ceilings_double_up_to_cap() -> None:
    sleep = FakeSleep()
    operation = Flaky(100, ValkeyConnectionError("refused"))

    with pytest.raises(ValkeyConnectionError):
        await retry_with_backoff(
            operation,
            attempts=6,
            base_delay=0.1,
            max_delay=0.5,
            sleep=sleep,
            rng=CeilingRandom(),
        )

    assert sleep.delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


async def test_delays_are_jittered_below_ceiling() -> None:
    sleep = FakeSleep()
    operation = Flaky(100, ValkeyConnectionError("refused"))
    ceilings = [min(1.0, 0.1 * 2**attempt) for attempt in range(19)]

    with pytest.raises(ValkeyConnectionError):
        await retry_with_backoff(
            operation,
            attempts=20,
            base_delay=0.1,
            max_delay=1.0,
            sleep=sleep,
            rng=random.Random(7),
        )

    assert len(sleep.delays) == 19
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(sleep.delays, ceilings))
    assert len(set(sleep.delays)) == 19
    # Full jitter draws from the whole range, so a fixed seed gives delays well below it.
    assert any(delay < ceiling / 2 for delay, ceiling in zip(sleep.delays, ceilings))


async def test_seeds_give_different_delays() -> None:
    first, second = FakeSleep(), FakeSleep()

    for sleep, seed in [(first, 1), (second, 2)]:
        with pytest.raises(ValkeyConnectionError):
            await retry_with_backoff(
                Flaky(100, ValkeyConnectionError("refused")),
                attempts=4,
                sleep=sleep,
                rng=random.Random(seed),
            )

    assert first.delays != second.delays


@pytest.mark.parametrize(
    "error", [ValueError("bug"), AuthenticationError("invalid password")], ids=["value", "auth"]
)
async def test_permanent_errors_not_retried(error: Exception) -> None:
    sleep = FakeSleep()
    operation = Flaky(100, error)

    with pytest.raises(type(error)):
        await retry_with_backoff(operation, attempts=5, sleep=sleep)

    assert operation.calls == 1
    assert sleep.delays == []


async def test_builtin_timeout_retried() -> None:
    sleep = FakeSleep()
    operation = Flaky(1, TimeoutError())

    assert await retry_with_backoff(operation, attempts=2, sleep=sleep) == "done"
    assert len(sleep.delays) == 1


async def test_invalid_attempts_rejected() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await retry_with_backoff(Flaky(0, ValueError()), attempts=0)
