"""FastAPI rate limiting: the dependency :class:`RateLimit` and the decorator
:func:`verify_and_limit`.

Both resolve each rule's key from the request, decide all rules in one round trip (RL.ALL
when there are several, so a request denied by one limit charges none of the others), and
respond in HTTP terms:

- allowed: the endpoint runs, and the response carries RateLimit-Policy and RateLimit;
- denied: 429 with a JSON body, Retry-After, RateLimit-Policy and RateLimit;
- Valkey unavailable and the limiter fails closed: 503 with Retry-After;
- Valkey unavailable and the limiter fails open: the endpoint runs, without RateLimit
  fields, because there is no state to report.

The limiter comes from the ``limiter`` argument or, if that is None, from
``app.state.rate_limiter``, so rules can be declared before the app connects to Valkey.
"""

# No `from __future__ import annotations` here: FastAPI reads the annotations of
# RateLimit.__call__ and of the decorated endpoints at run time.

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from fastapi import HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from .client import Decision
from .headers import (
    check_policy_name,
    rate_limit_field,
    rate_limit_policy_field,
    retry_after_seconds,
)
from .limiter import Limit, RateLimiter, Verdict
from .policies import Duration, Policy, check_count, policy_for

KeyFunc = Callable[[Request], Union[str, None, Awaitable[Union[str, None]]]]
"""Return a request's limiter key, or None to skip the rule for that request.

A key function may raise an HTTPException, for example 401 for a request with no valid
user, which is how the decorator verifies the caller before it limits them.
"""

STATE_ATTRIBUTE = "rate_limiter"
"""The ``app.state`` attribute that contains the default :class:`RateLimiter`."""

REQUEST_PARAMETER = "rate_limit_request"
RESPONSE_PARAMETER = "rate_limit_response"
"""Keyword parameters the decorator adds to an endpoint so FastAPI injects them."""

UNAVAILABLE_RETRY_AFTER_S = 1
"""The Retry-After of a 503 sent while Valkey is unavailable and the limiter fails closed."""

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True)
class Rule:
    """A named limit and the function that picks its key from a request."""

    name: str
    """The policy name in the RateLimit fields, the 429 body and the logs."""
    policy: Policy
    key_func: KeyFunc

    def __post_init__(self) -> None:
        check_policy_name(self.name)

    @classmethod
    def of(
        cls,
        name: str,
        *,
        limit: int,
        window: Duration,
        key_func: KeyFunc,
        algorithm: str = "sliding",
    ) -> "Rule":
        """Create a rule that allows ``limit`` requests per ``window`` with an algorithm."""
        return cls(name, policy_for(algorithm, limit, window), key_func)


class RateLimitExceeded(HTTPException):
    """A 429 response: the request is over a limit."""


class RateLimiterUnavailable(HTTPException):
    """A 503 response: Valkey cannot decide, and the limiter fails closed."""


class RateLimit:
    """A FastAPI dependency that charges a request to its rules, or rejects it.

    Use it as ``dependencies=[Depends(RateLimit(rule, ...))]`` or as a parameter
    ``verdict: Verdict = Depends(RateLimit(...))`` to read the decision in the endpoint.
    """

    def __init__(
        self,
        *rules: Rule,
        cost: int = 1,
        limiter: RateLimiter | None = None,
        name: str = "",
    ) -> None:
        """Create the dependency.

        ``name`` labels metrics and logs, and defaults to the rule names joined by "+".
        """
        if not rules:
            raise ValueError("RateLimit needs at least one rule")
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be distinct, since headers name them; got {names}")
        check_count(cost, "cost")
        if cost != 1:
            for rule in rules:
                if not rule.policy.accepts_cost:
                    raise ValueError(f"rule {rule.name!r} takes no cost; got cost={cost}")
        self.rules = rules
        self.cost = cost
        self.limiter = limiter
        # Named from every rule, so the label stays the same when a key function skips one.
        self.name = name or "+".join(names)

    async def __call__(self, request: Request, response: Response) -> Verdict | None:
        """Check the request and add the RateLimit fields to ``response``.

        Returns None when every rule's key function skipped the request.
        """
        limits = await self.resolve_limits(request)
        if not limits:
            return None

        verdict = await self.find_limiter(request).check(limits, cost=self.cost, name=self.name)
        if verdict.failed:
            if not verdict.allowed:
                raise unavailable_error()
            return verdict

        headers = rate_limit_headers(verdict)
        if not verdict.allowed:
            raise exceeded_error(verdict, self.cost, headers)
        response.headers.update(headers)
        return verdict

    async def resolve_limits(self, request: Request) -> list[Limit]:
        """Run each rule's key function, skipping the rules that return None."""
        limits = []
        for rule in self.rules:
            key = rule.key_func(request)
            if inspect.isawaitable(key):
                key = await key
            if key is not None:
                limits.append(Limit(rule.name, key, rule.policy))
        return limits

    def find_limiter(self, request: Request) -> RateLimiter:
        if self.limiter is not None:
            return self.limiter
        limiter = getattr(request.app.state, STATE_ATTRIBUTE, None)
        if not isinstance(limiter, RateLimiter):
            raise RuntimeError(
                f"no RateLimiter: pass limiter= or set app.state.{STATE_ATTRIBUTE} at startup"
            )
        return limiter


def rate_limit_headers(verdict: Verdict) -> dict[str, str]:
    """Render RateLimit-Policy and RateLimit for a verdict that Valkey decided."""
    return {
        "RateLimit-Policy": rate_limit_policy_field(verdict.limits),
        "RateLimit": rate_limit_field(verdict.limits, verdict.decisions),
    }


def exceeded_error(verdict: Verdict, cost: int, headers: dict[str, str]) -> RateLimitExceeded:
    """Build the 429 for a denied verdict: which limits denied, and when to retry."""
    combined: Decision | None = verdict.combined
    assert combined is not None, "a verdict that Valkey decided has a combined decision"
    denied = [limit.name for limit in verdict.denied_by]
    names = ", ".join(repr(name) for name in denied)

    if combined.never_allowed:
        too_small = [
            repr(limit.name)
            for limit, decision in zip(verdict.limits, verdict.decisions)
            if decision.never_allowed
        ]
        message = (
            f"Request rejected: it costs {cost} units, more than the {', '.join(too_small)} "
            "limit allows at once, so it can never be allowed."
        )
        retry_seconds = None
    else:
        retry_seconds = retry_after_seconds(combined.retry_after_ms)
        headers = {"Retry-After": str(retry_seconds), **headers}
        message = f"Rate limit exceeded: {names}. Retry in {retry_seconds} s."

    detail = {
        "error": "rate_limited",
        "message": message,
        "denied_by": denied,
        "retry_after_seconds": retry_seconds,
        "retry_after_ms": None if combined.never_allowed else combined.retry_after_ms,
    }
    return RateLimitExceeded(status_code=429, detail=detail, headers=headers)


def unavailable_error() -> RateLimiterUnavailable:
    detail = {
        "error": "rate_limiter_unavailable",
        "message": "The rate limiter cannot reach Valkey, so requests are rejected. Retry later.",
        "retry_after_seconds": UNAVAILABLE_RETRY_AFTER_S,
    }
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)}
    return RateLimiterUnavailable(status_code=503, detail=detail, headers=headers)


def verify_and_limit(
    *,
    limit: int | None = None,
    window: Duration | None = None,
    key_func: KeyFunc | None = None,
    algorithm: str = "sliding",
    name: str = "default",
    rules: Sequence[Rule] = (),
    cost: int = 1,
    limiter: RateLimiter | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Rate-limit an endpoint: ``limit`` requests per ``window`` per key, plus ``rules``.

    ``limit``, ``window`` and ``key_func`` together make a rule called ``name``. ``rules``
    adds more, such as a per-service limit beside a per-user one, and one RL.ALL call
    decides them all. Put the decorator below ``@app.get(...)``, so FastAPI registers the
    wrapped endpoint.
    """
    all_rules = list(rules)
    if limit is not None and window is not None and key_func is not None:
        rule = Rule.of(name, limit=limit, window=window, key_func=key_func, algorithm=algorithm)
        all_rules.insert(0, rule)
    elif limit is not None or window is not None or key_func is not None:
        raise TypeError("verify_and_limit needs limit, window and key_func together")
    dependency = RateLimit(*all_rules, cost=cost, limiter=limiter)

    def decorate(endpoint: Endpoint) -> Endpoint:
        return wrap_endpoint(endpoint, dependency)

    return decorate


def wrap_endpoint(endpoint: Endpoint, dependency: RateLimit) -> Endpoint:
    """Wrap an endpoint so FastAPI injects the request and response the check needs.

    The wrapper's signature is the endpoint's plus two keyword parameters, so FastAPI still
    validates and documents the endpoint's own parameters.
    """
    signature = inspect.signature(endpoint)
    for reserved in (REQUEST_PARAMETER, RESPONSE_PARAMETER):
        if reserved in signature.parameters:
            name = endpoint.__name__
            raise TypeError(f"{name} has a parameter {reserved!r}, reserved by the decorator")

    injected = [
        inspect.Parameter(REQUEST_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(RESPONSE_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=Response),
    ]
    parameters = list(signature.parameters.values())
    has_var_keyword = parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD
    position = len(parameters) - 1 if has_var_keyword else len(parameters)
    parameters[position:position] = injected
    is_async = inspect.iscoroutinefunction(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        request: Request = kwargs.pop(REQUEST_PARAMETER)
        response: Response = kwargs.pop(RESPONSE_PARAMETER)
        await dependency(request, response)

        if is_async:
            result = await endpoint(*args, **kwargs)
        else:
            result = await run_in_threadpool(endpoint, *args, **kwargs)

        # FastAPI copies the injected response's headers only onto responses it builds
        # itself, so an endpoint that returns its own Response gets them here.
        if isinstance(result, Response) and result is not response:
            for field in ("RateLimit-Policy", "RateLimit"):
                if field in response.headers:
                    result.headers[field] = response.headers[field]
        return result

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
