"""A thin async client for the module's RL.* commands over valkey-py.

The client renders arguments and decodes replies. It adds no state or retries, and no
timeouts of its own except RL.WAIT's read timeout, so every call is exactly one command and
one round trip. Replies decode the same
under RESP2 and RESP3, and with or without ``decode_responses``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from valkey.asyncio import Valkey
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from .policies import (
    MAX_DURATION_MS,
    Debounce,
    Duration,
    FixedWindow,
    Gcra,
    Policy,
    SlidingWindow,
    Throttle,
    TokenBucket,
    check_count,
    duration_ms,
    render_ms,
)

NEVER_MS = -1
"""The ``retry_after_ms`` of a request that can never be allowed (cost above the limit)."""

WAIT_READ_MARGIN_S = 1.0
"""Extra read time beyond an RL.WAIT timeout, so the server's own reply on timeout arrives."""


class ReplyError(Exception):
    """A reply that does not have the shape the module documents."""


@dataclass(frozen=True)
class Decision:
    """One limiter's decision: the module's five-integer reply, typed."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    """Wait in ms: 0 if allowed, else at least 1, or -1 if the request can never be allowed."""
    reset_after_ms: int
    """Time in ms until the limiter is fresh again, or 0 if it already is."""

    @property
    def retry_after(self) -> float:
        """Seconds until the same request would be allowed, or ``math.inf`` if it never can."""
        if self.never_allowed:
            return math.inf
        return self.retry_after_ms / 1000

    @property
    def reset_after(self) -> float:
        """Seconds until the limiter is fresh again."""
        return self.reset_after_ms / 1000

    @property
    def never_allowed(self) -> bool:
        """Whether the request can never be allowed, because its cost is above the limit."""
        return self.retry_after_ms == NEVER_MS


@dataclass(frozen=True)
class AllDecision:
    """An RL.ALL decision: the combined verdict, then each limiter's own in key order.

    When another limiter denies the request, a limiter that would have allowed it reports
    ``allowed`` with its ``remaining`` and ``reset_after`` as they are, since nothing was
    charged.
    """

    combined: Decision
    decisions: tuple[Decision, ...]

    @property
    def allowed(self) -> bool:
        return self.combined.allowed

    def denied_indices(self) -> list[int]:
        """Positions, in key order, of the limiters that denied the request."""
        return [index for index, decision in enumerate(self.decisions) if not decision.allowed]


def decode_decision(reply: Any) -> Decision:
    """Decode a five-integer reply, the same under RESP2 and RESP3."""
    if not isinstance(reply, (list, tuple)) or len(reply) != 5:
        raise ReplyError(f"expected an array of five integers; got {reply!r}")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in reply):
        raise ReplyError(f"expected an array of five integers; got {reply!r}")

    allowed, limit, remaining, retry_after_ms, reset_after_ms = reply
    if allowed not in (0, 1):
        raise ReplyError(f"expected allowed to be 0 or 1; got {reply!r}")
    return Decision(
        allowed=allowed == 1,
        limit=limit,
        remaining=remaining,
        retry_after_ms=retry_after_ms,
        reset_after_ms=reset_after_ms,
    )


def decode_all(reply: Any, count: int) -> AllDecision:
    """Decode an RL.ALL reply: ``count + 1`` five-integer arrays."""
    if not isinstance(reply, (list, tuple)) or len(reply) != count + 1:
        raise ReplyError(f"expected {count + 1} five-integer arrays; got {reply!r}")
    decisions = [decode_decision(item) for item in reply]
    return AllDecision(combined=decisions[0], decisions=tuple(decisions[1:]))


def decode_text(value: Any) -> Any:
    """Decode bytes to str so replies read the same with or without ``decode_responses``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def decode_info(reply: Any) -> dict[str, int | str] | None:
    """Decode RL.INFO: a map under RESP3, a flat name/value array under RESP2, or null."""
    if reply is None:
        return None
    if isinstance(reply, Mapping):
        pairs = list(reply.items())
    elif isinstance(reply, (list, tuple)) and len(reply) % 2 == 0:
        pairs = list(zip(reply[0::2], reply[1::2]))
    else:
        raise ReplyError(f"expected a map or a flat array of name/value pairs; got {reply!r}")
    return {str(decode_text(name)): decode_text(value) for name, value in pairs}


def cost_options(policy: Policy, cost: int) -> list[str]:
    """Render ``COST n`` for a single-limiter command, rejecting it where the command would."""
    check_count(cost, "cost")
    if cost == 1:
        return []
    if not policy.accepts_cost:
        raise ValueError(f"{policy.command} takes no COST; got cost={cost}")
    return ["COST", str(cost)]


def single_arguments(key: str, policy: Policy, cost: int, peek: bool) -> list[str]:
    """Render a single-limiter command, such as ``RL.FIXED key 10 60000ms COST 2``."""
    arguments = [policy.command, key, *policy.parameters(), *policy.options()]
    arguments += cost_options(policy, cost)
    if peek:
        arguments.append("PEEK")
    return arguments


def all_arguments(limits: Sequence[tuple[str, Policy]], cost: int, peek: bool) -> list[str]:
    """Render ``RL.ALL numkeys key... policy... [COST n] [PEEK]``."""
    if not limits:
        raise ValueError("RL.ALL needs at least one (key, policy) pair")
    keys = [key for key, _ in limits]
    if len(set(keys)) != len(keys):
        raise ValueError(f"RL.ALL keys must be distinct; got {keys}")

    arguments = ["RL.ALL", str(len(limits)), *keys]
    for _, policy in limits:
        if not policy.combinable:
            raise ValueError(f"RL.ALL does not take {policy.algorithm} policies")
        arguments += [policy.algorithm, *policy.parameters(), *policy.options()]

    check_count(cost, "cost")
    if cost != 1:
        arguments += ["COST", str(cost)]
    if peek:
        arguments.append("PEEK")
    return arguments


def wait_timeout_ms(timeout: Duration | None) -> int:
    """Convert an RL.WAIT timeout to milliseconds, where 0 means no timeout."""
    if timeout is None:
        return 0
    return duration_ms(timeout, "timeout")


class RateLimitClient:
    """Async calls to the RL.* commands on one ``valkey.asyncio.Valkey`` client.

    Timeouts and connection errors are those of the Valkey client passed in, except for
    RL.WAIT, which reads with a timeout of its own that outlasts the server-side wait.
    """

    def __init__(self, valkey: Valkey) -> None:
        self.valkey = valkey

    async def decide(
        self, key: str, policy: Policy, *, cost: int = 1, peek: bool = False
    ) -> Decision:
        """Run one limiter's command on ``key`` and charge ``cost`` units if it allows."""
        reply = await self.valkey.execute_command(*single_arguments(key, policy, cost, peek))
        return decode_decision(reply)

    async def fixed(
        self, key: str, limit: int, window: Duration, *, cost: int = 1, peek: bool = False
    ) -> Decision:
        return await self.decide(key, FixedWindow(limit, window), cost=cost, peek=peek)

    async def sliding(
        self,
        key: str,
        limit: int,
        window: Duration,
        *,
        precision: Duration | None = None,
        cost: int = 1,
        peek: bool = False,
    ) -> Decision:
        policy = SlidingWindow(limit, window, precision)
        return await self.decide(key, policy, cost=cost, peek=peek)

    async def token_bucket(
        self,
        key: str,
        capacity: int,
        tokens: int,
        period: Duration,
        *,
        cost: int = 1,
        peek: bool = False,
    ) -> Decision:
        policy = TokenBucket(capacity, tokens, period)
        return await self.decide(key, policy, cost=cost, peek=peek)

    async def gcra(
        self,
        key: str,
        burst: int,
        tokens: int,
        period: Duration,
        *,
        cost: int = 1,
        peek: bool = False,
    ) -> Decision:
        return await self.decide(key, Gcra(burst, tokens, period), cost=cost, peek=peek)

    async def throttle(self, key: str, interval: Duration, *, peek: bool = False) -> Decision:
        return await self.decide(key, Throttle(interval), peek=peek)

    async def debounce(self, key: str, interval: Duration, *, peek: bool = False) -> Decision:
        return await self.decide(key, Debounce(interval), peek=peek)

    async def all(
        self, limits: Sequence[tuple[str, Policy]], *, cost: int = 1, peek: bool = False
    ) -> AllDecision:
        """Decide several limiters as one with RL.ALL: all are charged, or none is.

        Outside a cluster any keys work. In a cluster they must share a hash slot, so give
        them a common hash tag such as ``rate:{tenant7}:user:42``.
        """
        reply = await self.valkey.execute_command(*all_arguments(limits, cost, peek))
        return decode_all(reply, len(limits))

    async def wait(
        self, key: str, policy: Policy, timeout: Duration | None, *, cost: int = 1
    ) -> Decision:
        """Block in the server with RL.WAIT until the limiter allows, or ``timeout`` passes.

        A ``timeout`` of None waits as long as it takes. A reply that comes on timeout is a
        denial with the wrapped command's ``retry_after_ms``.
        """
        if not policy.combinable:
            raise ValueError(f"RL.WAIT does not take {policy.algorithm} policies")

        timeout_ms = wait_timeout_ms(timeout)
        # The wrapped command's arguments after its name and key, as RL.WAIT takes them.
        wrapped = single_arguments(key, policy, cost, peek=False)[2:]
        arguments = ["RL.WAIT", render_ms(timeout_ms), policy.algorithm, key, *wrapped]
        return decode_decision(await self._blocking_call(arguments, timeout_ms))

    async def wait_all(
        self,
        limits: Sequence[tuple[str, Policy]],
        timeout: Duration | None,
        *,
        cost: int = 1,
    ) -> AllDecision:
        """Block with ``RL.WAIT timeout ALL ...`` until every limiter allows at once."""
        timeout_ms = wait_timeout_ms(timeout)
        wrapped = all_arguments(limits, cost, peek=False)
        arguments = ["RL.WAIT", render_ms(timeout_ms), "ALL", *wrapped[1:]]
        return decode_all(await self._blocking_call(arguments, timeout_ms), len(limits))

    async def info(self, key: str) -> dict[str, int | str] | None:
        """Read a limiter's algorithm, parameters and state with RL.INFO, or None if missing."""
        return decode_info(await self.valkey.execute_command("RL.INFO", key))

    async def _blocking_call(self, arguments: list[str], timeout_ms: int) -> Any:
        """Send a blocking command on a pooled connection with a read timeout that fits it.

        The client's socket timeout is meant for fast commands and would cut a wait short.
        """
        pool = self.valkey.connection_pool
        connection = await pool.get_connection(arguments[0])
        try:
            await connection.send_command(*arguments)
            # A wait without end still needs a finite read timeout, because valkey-py falls
            # back to the socket timeout when given None.
            wait_ms = timeout_ms if timeout_ms > 0 else MAX_DURATION_MS
            read_timeout = wait_ms / 1000 + WAIT_READ_MARGIN_S
            reply = await connection.read_response(timeout=read_timeout)
            if reply is None:
                # valkey-py returns None on a read timeout given per call and leaves the
                # connection open, so a late reply would be read as the next command's.
                await connection.disconnect()
                raise ValkeyTimeoutError(f"{arguments[0]} got no reply in {read_timeout} s")
            return reply
        finally:
            await pool.release(connection)
