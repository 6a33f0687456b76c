"""The typed client against a real server, under RESP2 and RESP3."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
import valkey.asyncio
from valkey.exceptions import ResponseError

from valkey_ratelimit import (
    Debounce,
    Decision,
    FixedWindow,
    Gcra,
    RateLimitClient,
    ReplyError,
    SlidingWindow,
    Throttle,
    TokenBucket,
)
from valkey_ratelimit.client import decode_decision, decode_info

from conftest import ValkeyServer


@pytest.fixture
def client(valkey_client: valkey.asyncio.Valkey) -> RateLimitClient:
    return RateLimitClient(valkey_client)


async def test_fixed_window_allows_then_denies(client: RateLimitClient, prefix: str) -> None:
    first = await client.fixed(prefix + "f", 2, 10)
    second = await client.fixed(prefix + "f", 2, 10)
    third = await client.fixed(prefix + "f", 2, 10)

    assert first == Decision(True, 2, 1, 0, 10_000)
    assert second.allowed
    assert second.remaining == 0
    assert not third.allowed
    assert third.remaining == 0
    assert 9_000 < third.retry_after_ms <= 10_000
    assert third.retry_after == third.retry_after_ms / 1000
    assert third.reset_after == third.reset_after_ms / 1000


async def test_fixed_window_takes_timedelta(client: RateLimitClient, prefix: str) -> None:
    decision = await client.fixed(prefix + "f", 5, timedelta(milliseconds=1500))
    info = await client.info(prefix + "f")

    assert decision == Decision(True, 5, 4, 0, 1500)
    assert info is not None
    assert info["window_ms"] == 1500


async def test_sliding_window_with_precision(client: RateLimitClient, prefix: str) -> None:
    first = await client.sliding(prefix + "s", 2, 10, precision=1)
    second = await client.sliding(prefix + "s", 2, 10, precision=1)
    third = await client.sliding(prefix + "s", 2, 10, precision=1)
    info = await client.info(prefix + "s")

    assert (first.allowed, first.limit, first.remaining) == (True, 2, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed
    assert 0 < third.retry_after_ms <= 10_000
    assert info is not None
    assert info["algorithm"] == "SLIDING"
    assert info["precision_ms"] == 1000
    assert info["used"] == 2


async def test_sliding_window_exact_by_default(client: RateLimitClient, prefix: str) -> None:
    decision = await client.sliding(prefix + "s", 3, 60)
    info = await client.info(prefix + "s")

    assert decision == Decision(True, 3, 2, 0, 60_000)
    assert info is not None
    assert info["precision_ms"] == 1


async def test_token_bucket_charges_cost(client: RateLimitClient, prefix: str) -> None:
    first = await client.token_bucket(prefix + "t", 5, 1, 1, cost=3)
    second = await client.token_bucket(prefix + "t", 5, 1, 1, cost=3)

    assert first == Decision(True, 5, 2, 0, 3000)
    assert not second.allowed
    assert second.remaining == 2
    # One token is missing, and it refills in one period of 1000 ms.
    assert 0 < second.retry_after_ms <= 1000


async def test_gcra_allows_burst(client: RateLimitClient, prefix: str) -> None:
    decisions = [await client.gcra(prefix + "g", 3, 1, 10) for _ in range(4)]
    info = await client.info(prefix + "g")

    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert decisions[0] == Decision(True, 3, 2, 0, 10_000)
    assert 0 < decisions[3].retry_after_ms <= 10_000
    assert info is not None
    assert info["algorithm"] == "GCRA"
    assert info["burst"] == 3


async def test_throttle_allows_one_per_interval(client: RateLimitClient, prefix: str) -> None:
    first = await client.throttle(prefix + "th", 5)
    second = await client.throttle(prefix + "th", 5)

    assert first == Decision(True, 1, 0, 0, 5000)
    assert not second.allowed
    assert 0 < second.retry_after_ms <= 5000


async def test_debounce_restarts_quiet_period(client: RateLimitClient, prefix: str) -> None:
    first = await client.debounce(prefix + "d", 2)
    second = await client.debounce(prefix + "d", 2)

    assert first == Decision(True, 1, 0, 0, 2000)
    assert not second.allowed
    # Every request restarts the quiet period, so a denied one waits the whole interval.
    assert second.retry_after_ms == 2000


async def test_peek_charges_nothing(
    client: RateLimitClient, valkey_client: valkey.asyncio.Valkey, prefix: str
) -> None:
    peeked = await client.fixed(prefix + "p", 2, 10, peek=True)
    exists = await valkey_client.exists(prefix + "p")
    charged = await client.fixed(prefix + "p", 2, 10)

    assert peeked == Decision(True, 2, 1, 0, 10_000)
    assert exists == 0
    assert charged == Decision(True, 2, 1, 0, 10_000)


async def test_cost_above_limit_never_allowed(client: RateLimitClient, prefix: str) -> None:
    decision = await client.fixed(prefix + "c", 2, 10, cost=3)

    assert decision == Decision(False, 2, 2, -1, 0)
    assert decision.never_allowed
    assert decision.retry_after == math.inf


async def test_all_charges_every_limiter(client: RateLimitClient, prefix: str) -> None:
    limits = [(prefix + "user", SlidingWindow(3, 60)), (prefix + "service", FixedWindow(5, 60))]

    result = await client.all(limits)
    user = await client.info(prefix + "user")
    service = await client.info(prefix + "service")

    assert result.allowed
    assert result.combined == Decision(True, 3, 2, 0, 60_000)
    assert result.decisions == (Decision(True, 3, 2, 0, 60_000), Decision(True, 5, 4, 0, 60_000))
    assert user is not None
    assert user["used"] == 1
    assert service is not None
    assert service["used"] == 1


async def test_all_denied_charges_none(client: RateLimitClient, prefix: str) -> None:
    await client.fixed(prefix + "service", 1, 60)
    limits = [(prefix + "user", FixedWindow(3, 60)), (prefix + "service", FixedWindow(1, 60))]

    result = await client.all(limits)
    user = await client.info(prefix + "user")

    assert not result.allowed
    assert result.denied_indices() == [1]
    assert result.combined.remaining == 0
    assert 0 < result.combined.retry_after_ms <= 60_000
    # A denied request never creates the user's limiter.
    assert user is None


async def test_all_with_every_combinable_policy(client: RateLimitClient, prefix: str) -> None:
    limits = [
        (prefix + "a", FixedWindow(5, 60)),
        (prefix + "b", SlidingWindow(5, 60, precision=1)),
        (prefix + "c", TokenBucket(5, 1, 1)),
        (prefix + "d", Gcra(5, 1, 1)),
        (prefix + "e", Throttle(1)),
    ]

    result = await client.all(limits, cost=1)

    assert result.allowed
    assert len(result.decisions) == 5
    assert result.combined.limit == 1
    assert result.combined.remaining == 0


async def test_all_peek_charges_nothing(client: RateLimitClient, prefix: str) -> None:
    limits = [(prefix + "a", FixedWindow(2, 60)), (prefix + "b", FixedWindow(2, 60))]

    result = await client.all(limits, cost=2, peek=True)
    first = await client.info(prefix + "a")

    assert result.allowed
    assert result.combined.remaining == 0
    assert first is None


async def test_wait_blocks_until_allowed(client: RateLimitClient, prefix: str) -> None:
    policy = FixedWindow(1, 0.3)
    await client.decide(prefix + "w", policy)

    started = time.monotonic()
    decision = await client.wait(prefix + "w", policy, timeout=2)
    elapsed = time.monotonic() - started

    assert decision.allowed
    assert 0.2 < elapsed < 1.5


async def test_wait_without_timeout(client: RateLimitClient, prefix: str) -> None:
    policy = TokenBucket(1, 1, 0.3)
    await client.decide(prefix + "w", policy)

    started = time.monotonic()
    decision = await client.wait(prefix + "w", policy, timeout=None)
    elapsed = time.monotonic() - started

    assert decision.allowed
    assert 0.2 < elapsed < 1.5


async def test_wait_times_out_denied(valkey_server: ValkeyServer, prefix: str) -> None:
    # The socket timeout is shorter than the wait, which must not cut the wait short.
    fast = valkey.asyncio.Valkey.from_url(valkey_server.url, socket_timeout=0.05)
    client = RateLimitClient(fast)
    policy = FixedWindow(1, 10)
    await client.decide(prefix + "w", policy)

    started = time.monotonic()
    decision = await client.wait(prefix + "w", policy, timeout=0.2)
    elapsed = time.monotonic() - started
    after = await client.fixed(prefix + "other", 1, 10)
    await fast.aclose()

    assert not decision.allowed
    assert 0 < decision.retry_after_ms <= 10_000
    assert 0.15 < elapsed < 1.5
    assert after.allowed


async def test_wait_all_blocks_until_both_allow(client: RateLimitClient, prefix: str) -> None:
    limits = [(prefix + "a", FixedWindow(1, 0.3)), (prefix + "b", FixedWindow(5, 60))]
    await client.all(limits)

    started = time.monotonic()
    result = await client.wait_all(limits, timeout=2)
    elapsed = time.monotonic() - started
    service = await client.info(prefix + "b")

    assert result.allowed
    assert 0.2 < elapsed < 1.5
    assert service is not None
    assert service["used"] == 2


async def test_info_missing_key_is_none(client: RateLimitClient, prefix: str) -> None:
    assert await client.info(prefix + "missing") is None


async def test_info_keys_are_text(valkey_server: ValkeyServer, protocol: int, prefix: str) -> None:
    decoded = valkey.asyncio.Valkey.from_url(
        valkey_server.url, protocol=protocol, decode_responses=True
    )
    client = RateLimitClient(decoded)
    await client.token_bucket(prefix + "t", 5, 1, 1)

    info = await client.info(prefix + "t")
    await decoded.aclose()

    assert info is not None
    assert info["algorithm"] == "TOKENBUCKET"
    assert info["capacity"] == 5
    assert info["period_ms"] == 1000


async def test_wrong_algorithm_raises(client: RateLimitClient, prefix: str) -> None:
    await client.sliding(prefix + "k", 5, 60)

    with pytest.raises(ResponseError, match="SLIDING"):
        await client.fixed(prefix + "k", 5, 60)


def test_policies_render_milliseconds() -> None:
    assert FixedWindow(10, 1.5).parameters() == ["10", "1500ms"]
    assert FixedWindow(10, 4.35).parameters() == ["10", "4350ms"]
    assert SlidingWindow(10, 60, precision=0.25).options() == ["PRECISION", "250ms"]
    assert TokenBucket(10, 1, timedelta(minutes=1)).parameters() == ["10", "1", "60000ms"]
    assert Gcra(5, 2, 1).parameters() == ["5", "2", "1000ms"]
    assert Throttle(timedelta(microseconds=2500)).parameters() == ["2ms"]


@pytest.mark.parametrize("window", [0, -1, 0.0004, timedelta(0), 3_153_600_001, math.nan, True])
def test_invalid_durations_rejected(window: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        FixedWindow(1, window)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, 2**63, 1.5, True])
def test_invalid_counts_rejected(limit: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        FixedWindow(limit, 1)  # type: ignore[arg-type]


def test_precision_above_window_rejected() -> None:
    with pytest.raises(ValueError, match="precision"):
        SlidingWindow(10, 1, precision=2)


async def test_debounce_rejected_by_all(client: RateLimitClient, prefix: str) -> None:
    with pytest.raises(ValueError, match="DEBOUNCE"):
        await client.all([(prefix + "a", Debounce(1)), (prefix + "b", FixedWindow(1, 1))])


async def test_throttle_rejects_cost(client: RateLimitClient, prefix: str) -> None:
    with pytest.raises(ValueError, match="COST"):
        await client.decide(prefix + "a", Throttle(1), cost=2)


def test_decode_rejects_bad_shapes() -> None:
    for reply in [None, [1, 2, 3], [1, 2, 3, 4, b"5"], [2, 1, 1, 0, 0], "OK"]:
        with pytest.raises(ReplyError):
            decode_decision(reply)


def test_decode_info_reads_both_protocols() -> None:
    resp2 = [b"algorithm", b"FIXED", b"limit", 3]
    resp3 = {b"algorithm": b"FIXED", b"limit": 3}

    assert decode_info(resp2) == {"algorithm": "FIXED", "limit": 3}
    assert decode_info(resp3) == {"algorithm": "FIXED", "limit": 3}
    assert decode_info(None) is None
