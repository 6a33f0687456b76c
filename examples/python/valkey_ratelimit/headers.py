"""HTTP rate-limit header fields: Retry-After and the IETF RateLimit fields.

The RateLimit-Policy and RateLimit fields follow draft-ietf-httpapi-ratelimit-headers-10:
each is an HTTP Structured Fields list with one member per policy, a quoted policy name
with integer parameters::

    RateLimit-Policy: "user";q=10;w=60, "service";q=100;w=60
    RateLimit: "user";r=9;t=60, "service";r=99;t=60
"""

from __future__ import annotations

from collections.abc import Sequence

from .client import NEVER_MS, Decision
from .limiter import Limit
from .policies import ceil_seconds


def check_policy_name(name: str) -> str:
    """Validate a policy name as a Structured Fields string: printable ASCII only."""
    if not name or any(not 0x20 <= ord(character) <= 0x7E for character in name):
        raise ValueError(f"a policy name must be non-empty printable ASCII; got {name!r}")
    return name


def sf_string(value: str) -> str:
    """Serialize a Structured Fields string: quoted, with backslash and quote escaped."""
    check_policy_name(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def retry_after_seconds(retry_after_ms: int) -> int:
    """Round a wait up to whole seconds, at least 1, for the Retry-After field.

    Rounding up means a client that waits that long is allowed. The minimum is 1 because
    ``Retry-After: 0`` invites a client to retry at once.
    """
    if retry_after_ms == NEVER_MS:
        raise ValueError("a request that can never be allowed has no Retry-After")
    return max(1, ceil_seconds(retry_after_ms))


def rate_limit_policy_field(limits: Sequence[Limit]) -> str:
    """Render RateLimit-Policy: each limit's quota and window in seconds."""
    members = [
        f"{sf_string(limit.name)};q={limit.policy.quota};w={limit.policy.window_seconds}"
        for limit in limits
    ]
    return ", ".join(members)


def rate_limit_field(limits: Sequence[Limit], decisions: Sequence[Decision]) -> str:
    """Render RateLimit: each limit's remaining units and seconds until it resets."""
    if len(limits) != len(decisions):
        counts = f"{len(decisions)} for {len(limits)}"
        raise ValueError(f"expected one decision per limit; got {counts}")

    members = []
    for limit, decision in zip(limits, decisions):
        reset_seconds = ceil_seconds(decision.reset_after_ms)
        members.append(f"{sf_string(limit.name)};r={decision.remaining};t={reset_seconds}")
    return ", ".join(members)
