"""The FastAPI dependency and decorator against a real server, through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from valkey_ratelimit import (
    RateLimit,
    RateLimiter,
    RateLimitMetrics,
    Rule,
    Verdict,
    verify_and_limit,
)
from valkey_ratelimit.headers import retry_after_seconds, sf_string

from conftest import ValkeyServer

# Generous, so a busy test machine never trips the outage policy in these tests.
TIMEOUT_S = 2.0


def build_app(prefix: str) -> FastAPI:
    """An app with one endpoint per way of declaring limits; keys start with ``prefix``."""
    app = FastAPI()

    def user_key(request: Request) -> str:
        user_id = request.headers.get("X-User-Id")
        if not user_id:
            raise HTTPException(status_code=401, detail="missing X-User-Id header")
        return f"{prefix}rate:user:{user_id}"

    async def optional_user_key(request: Request) -> str | None:
        user_id = request.headers.get("X-User-Id")
        return f"{prefix}rate:user:{user_id}" if user_id else None

    def service_key(request: Request) -> str:
        return f"{prefix}rate:service:orders"

    service_rule = Rule.of(
        "service", limit=2, window=60, key_func=service_key, algorithm="fixed"
    )

    @app.get("/user")
    @verify_and_limit(limit=2, window=60, key_func=user_key, name="user")
    async def per_user() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/service")
    @verify_and_limit(rules=[service_rule])
    async def per_service() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/both")
    @verify_and_limit(limit=3, window=60, key_func=user_key, name="user", rules=[service_rule])
    async def per_user_and_service() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items/{item_id}")
    @verify_and_limit(limit=5, window=60, key_func=user_key, name="user", algorithm="fixed")
    async def item(item_id: int, q: str = "none") -> dict[str, object]:
        return {"item_id": item_id, "q": q}

    @app.get("/own-response")
    @verify_and_limit(limit=5, window=60, key_func=user_key, name="user")
    async def own_response() -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"X-Own": "yes"})

    @app.get("/sync")
    @verify_and_limit(limit=5, window=60, key_func=user_key, name="user")
    def sync_endpoint() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/optional")
    @verify_and_limit(limit=1, window=60, key_func=optional_user_key, name="user")
    async def optional() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bucket")
    @verify_and_limit(
        limit=10, window=30, key_func=user_key, name="burst", algorithm="token_bucket"
    )
    async def bucket() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/expensive")
    @verify_and_limit(limit=2, window=60, key_func=user_key, name="user", cost=3)
    async def expensive() -> dict[str, bool]:
        return {"ok": True}

    user_dependency = RateLimit(Rule.of("user", limit=2, window=60, key_func=user_key))

    @app.get("/dependency")
    async def with_dependency(
        verdict: Verdict | None = Depends(user_dependency),
    ) -> dict[str, int]:
        assert verdict is not None
        return {"remaining": verdict.decisions[0].remaining}

    return app


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def limiter(
    valkey_server: ValkeyServer, protocol: int, registry: CollectorRegistry
) -> AsyncIterator[RateLimiter]:
    instance = RateLimiter.from_url(
        valkey_server.url, protocol=protocol, timeout=TIMEOUT_S, metrics=RateLimitMetrics(registry)
    )
    yield instance
    await instance.aclose()


@pytest.fixture
async def http(limiter: RateLimiter, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(prefix)
    app.state.rate_limiter = limiter
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id}


async def test_allowed_response_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/user", headers=as_user("1"))

    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"user";q=2;w=60'
    assert response.headers["RateLimit"] == '"user";r=1;t=60'
    assert "Retry-After" not in response.headers


async def test_denied_response_headers(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        await http.get("/user", headers=as_user("1"))

    response = await http.get("/user", headers=as_user("1"))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.headers["RateLimit-Policy"] == '"user";q=2;w=60'
    assert response.headers["RateLimit"] == '"user";r=0;t=60'


async def test_denied_response_body(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        await http.get("/user", headers=as_user("1"))

    response = await http.get("/user", headers=as_user("1"))
    detail = response.json()["detail"]

    assert response.headers["content-type"] == "application/json"
    assert detail["error"] == "rate_limited"
    assert detail["denied_by"] == ["user"]
    assert detail["retry_after_seconds"] == 60
    assert 59_000 < detail["retry_after_ms"] <= 60_000
    assert detail["message"] == "Rate limit exceeded: 'user'. Retry in 60 s."


async def test_user_limits_are_separate(http: httpx.AsyncClient) -> None:
    first = [(await http.get("/user", headers=as_user("1"))).status_code for _ in range(3)]
    other = await http.get("/user", headers=as_user("2"))

    assert first == [200, 200, 429]
    assert other.status_code == 200
    assert other.headers["RateLimit"] == '"user";r=1;t=60'


async def test_service_limit_is_shared(http: httpx.AsyncClient) -> None:
    first = await http.get("/service", headers=as_user("1"))
    second = await http.get("/service", headers=as_user("2"))
    third = await http.get("/service", headers=as_user("3"))

    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"service";q=2;w=60'
    assert first.headers["RateLimit"] == '"service";r=1;t=60'
    assert second.status_code == 200
    assert third.status_code == 429
    assert third.json()["detail"]["denied_by"] == ["service"]
    assert third.headers["RateLimit"] == '"service";r=0;t=60'


async def test_both_limits_on_allowed(http: httpx.AsyncClient) -> None:
    response = await http.get("/both", headers=as_user("1"))

    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"user";q=3;w=60, "service";q=2;w=60'
    assert response.headers["RateLimit"] == '"user";r=2;t=60, "service";r=1;t=60'


async def test_service_denial_charges_user_nothing(
    http: httpx.AsyncClient, limiter: RateLimiter, prefix: str
) -> None:
    for _ in range(2):
        assert (await http.get("/both", headers=as_user("1"))).status_code == 200

    denied = await http.get("/both", headers=as_user("1"))
    other = await http.get("/both", headers=as_user("2"))
    user = await limiter.client.info(f"{prefix}rate:user:1")
    other_user = await limiter.client.info(f"{prefix}rate:user:2")

    assert denied.status_code == 429
    assert denied.json()["detail"]["denied_by"] == ["service"]
    assert denied.headers["Retry-After"] == "60"
    assert denied.headers["RateLimit-Policy"] == '"user";q=3;w=60, "service";q=2;w=60'
    # Nothing was charged, so the user limit still has one unit, as RL.INFO shows.
    assert denied.headers["RateLimit"] == '"user";r=1;t=60, "service";r=0;t=60'
    assert other.status_code == 429
    assert user is not None
    assert user["used"] == 2
    assert user["remaining"] == 1
    assert other_user is None


async def test_user_denial_charges_service_nothing(
    http: httpx.AsyncClient, limiter: RateLimiter, prefix: str
) -> None:
    await limiter.client.sliding(f"{prefix}rate:user:1", 3, 60, cost=3)

    denied = await http.get("/both", headers=as_user("1"))
    service = await limiter.client.info(f"{prefix}rate:service:orders")

    assert denied.status_code == 429
    assert denied.json()["detail"]["denied_by"] == ["user"]
    assert service is None


async def test_key_func_verifies_caller(http: httpx.AsyncClient, prefix: str) -> None:
    response = await http.get("/user")

    assert response.status_code == 401
    assert response.json() == {"detail": "missing X-User-Id header"}
    assert "RateLimit" not in response.headers


async def test_key_func_none_skips_limit(http: httpx.AsyncClient) -> None:
    anonymous = [(await http.get("/optional")).status_code for _ in range(3)]
    named = [(await http.get("/optional", headers=as_user("1"))).status_code for _ in range(2)]
    skipped = await http.get("/optional")

    assert anonymous == [200, 200, 200]
    assert named == [200, 429]
    assert "RateLimit" not in skipped.headers


async def test_endpoint_parameters_still_validated(http: httpx.AsyncClient) -> None:
    valid = await http.get("/items/7", params={"q": "pear"}, headers=as_user("1"))
    invalid = await http.get("/items/seven", headers=as_user("1"))

    assert valid.status_code == 200
    assert valid.json() == {"item_id": 7, "q": "pear"}
    assert valid.headers["RateLimit"] == '"user";r=4;t=60'
    assert invalid.status_code == 422


async def test_openapi_hides_injected_parameters(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    parameters = schema["paths"]["/items/{item_id}"]["get"]["parameters"]

    assert [parameter["name"] for parameter in parameters] == ["item_id", "q"]


async def test_own_response_gets_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/own-response", headers=as_user("1"))

    assert response.status_code == 200
    assert response.headers["X-Own"] == "yes"
    assert response.headers["RateLimit"] == '"user";r=4;t=60'


async def test_sync_endpoint_limited(http: httpx.AsyncClient) -> None:
    response = await http.get("/sync", headers=as_user("1"))

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["RateLimit"] == '"user";r=4;t=60'


async def test_token_bucket_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/bucket", headers=as_user("1"))

    assert response.headers["RateLimit-Policy"] == '"burst";q=10;w=30'
    # One token of ten refills in 3 s, so the bucket is full again 3 s after one request.
    assert response.headers["RateLimit"] == '"burst";r=9;t=3'


async def test_cost_above_limit_rejected(http: httpx.AsyncClient) -> None:
    response = await http.get("/expensive", headers=as_user("1"))
    detail = response.json()["detail"]

    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert detail["retry_after_seconds"] is None
    assert detail["denied_by"] == ["user"]
    assert "can never be allowed" in detail["message"]


async def test_dependency_returns_verdict(http: httpx.AsyncClient) -> None:
    first = await http.get("/dependency", headers=as_user("1"))
    second = await http.get("/dependency", headers=as_user("1"))
    third = await http.get("/dependency", headers=as_user("1"))

    assert first.json() == {"remaining": 1}
    assert first.headers["RateLimit"] == '"user";r=1;t=60'
    assert second.json() == {"remaining": 0}
    assert third.status_code == 429
    assert third.headers["Retry-After"] == "60"


async def test_decisions_counted(http: httpx.AsyncClient, registry: CollectorRegistry) -> None:
    for _ in range(3):
        await http.get("/user", headers=as_user("1"))
    await http.get("/both", headers=as_user("1"))

    def decisions(limiter: str, outcome: str) -> float | None:
        labels = {"limiter": limiter, "outcome": outcome}
        return registry.get_sample_value("valkey_ratelimit_decisions_total", labels)

    assert decisions("user", "allowed") == 2
    assert decisions("user", "denied") == 1
    assert decisions("user+service", "allowed") == 1
    latency = registry.get_sample_value(
        "valkey_ratelimit_decision_seconds_count", {"limiter": "user"}
    )
    assert latency == 3


async def test_missing_limiter_is_an_error() -> None:
    app = FastAPI()

    @app.get("/")
    @verify_and_limit(limit=1, window=1, key_func=lambda request: "key")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="app.state.rate_limiter"):
            await client.get("/")


def test_retry_after_rounds_up() -> None:
    assert retry_after_seconds(1) == 1
    assert retry_after_seconds(999) == 1
    assert retry_after_seconds(1000) == 1
    assert retry_after_seconds(1001) == 2
    assert retry_after_seconds(59_987) == 60


def test_policy_names_are_quoted() -> None:
    assert sf_string("user") == '"user"'
    assert sf_string('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        sf_string("caf\u00e9")
    with pytest.raises(ValueError):
        sf_string("")


def test_decorator_needs_limit_window_and_key() -> None:
    with pytest.raises(TypeError, match="together"):
        verify_and_limit(limit=1, window=1)


def test_rule_names_must_differ() -> None:
    rule = Rule.of("user", limit=1, window=1, key_func=lambda request: "key")

    with pytest.raises(ValueError, match="distinct"):
        RateLimit(rule, rule)


def test_cost_checked_at_declaration() -> None:
    rule = Rule.of("user", limit=1, window=1, key_func=lambda request: "key")
    throttle = Rule.of(
        "email", limit=1, window=1, key_func=lambda request: "key", algorithm="throttle"
    )

    with pytest.raises(ValueError, match="cost must be an integer"):
        RateLimit(rule, cost=0)
    with pytest.raises(ValueError, match="'email' takes no cost"):
        RateLimit(rule, throttle, cost=2)


async def test_label_kept_when_rule_skipped(
    limiter: RateLimiter, registry: CollectorRegistry, prefix: str
) -> None:
    def optional_user_key(request: Request) -> str | None:
        user_id = request.headers.get("X-User-Id")
        return f"{prefix}rate:user:{user_id}" if user_id else None

    def service_key(request: Request) -> str:
        return f"{prefix}rate:service:labels"

    app = FastAPI()
    app.state.rate_limiter = limiter
    service = Rule.of("service", limit=10, window=60, key_func=service_key)

    @app.get("/")
    @verify_and_limit(
        limit=10, window=60, key_func=optional_user_key, name="user", rules=[service]
    )
    async def root() -> dict[str, bool]:
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/")
        await client.get("/", headers=as_user("1"))

    labels = {"limiter": "user+service", "outcome": "allowed"}
    assert registry.get_sample_value("valkey_ratelimit_decisions_total", labels) == 2
    labels = {"limiter": "service", "outcome": "allowed"}
    assert registry.get_sample_value("valkey_ratelimit_decisions_total", labels) is None
