"""Rate limiting for FastAPI services on the valkey-ratelimit module's RL.* commands."""

from .client import AllDecision, Decision, RateLimitClient, ReplyError
from .headers import rate_limit_field, rate_limit_policy_field, retry_after_seconds
from .integration import (
    STATE_ATTRIBUTE,
    RateLimit,
    RateLimiterUnavailable,
    RateLimitExceeded,
    Rule,
    verify_and_limit,
)
from .limiter import FailureMode, InvalidRequestError, Limit, RateLimiter, Verdict
from .metrics import RateLimitMetrics
from .policies import (
    Debounce,
    Duration,
    FixedWindow,
    Gcra,
    Policy,
    SlidingWindow,
    Throttle,
    TokenBucket,
    policy_for,
)
from .retry import retry_with_backoff

__all__ = [
    "STATE_ATTRIBUTE",
    "AllDecision",
    "Debounce",
    "Decision",
    "Duration",
    "FailureMode",
    "FixedWindow",
    "Gcra",
    "InvalidRequestError",
    "Limit",
    "Policy",
    "RateLimit",
    "RateLimitClient",
    "RateLimitExceeded",
    "RateLimitMetrics",
    "RateLimiter",
    "RateLimiterUnavailable",
    "ReplyError",
    "Rule",
    "SlidingWindow",
    "Throttle",
    "TokenBucket",
    "Verdict",
    "policy_for",
    "rate_limit_field",
    "rate_limit_policy_field",
    "retry_after_seconds",
    "retry_with_backoff",
    "verify_and_limit",
]
