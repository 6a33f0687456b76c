"""An example FastAPI service with per-user and per-service rate limits and /metrics.

Run it against a Valkey with the module loaded::

    VALKEY_URL=valkey://127.0.0.1:6379 .venv/bin/uvicorn --app-dir examples/python example_app:app

uvicorn is not a dependency of this package; install it into the venv first. Then
``curl -i -H 'X-User-Id: 42' localhost:8000/items`` shows the RateLimit fields.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from valkey_ratelimit import (
    FailureMode,
    RateLimiter,
    RateLimitMetrics,
    Rule,
    verify_and_limit,
)
from valkey_ratelimit.limiter import DEFAULT_TIMEOUT_S

SERVICE_NAME = "items"
USER_LIMIT_PER_MINUTE = 5
SERVICE_LIMIT_PER_MINUTE = 100


def user_id_of(request: Request) -> str:
    """Return the caller's user id, rejecting callers that give none.

    A real service would take the id from a verified token; a header keeps the example short.
    """
    user_id = request.headers.get("X-User-Id", "")
    if not user_id.isdigit():
        raise HTTPException(status_code=401, detail="missing or invalid X-User-Id header")
    return user_id


def create_app(
    valkey_url: str,
    *,
    registry: CollectorRegistry | None = None,
    failure_mode: FailureMode = FailureMode.OPEN,
    timeout: float = DEFAULT_TIMEOUT_S,
    protocol: int = 2,
    key_prefix: str = "",
) -> FastAPI:
    """Build the app.

    The registry and the key prefix are parameters so that tests can read the metrics and
    share a Valkey without seeing each other's keys.
    """

    def user_key(request: Request) -> str:
        return f"{key_prefix}rate:user:{user_id_of(request)}"

    def service_key(request: Request) -> str:
        return f"{key_prefix}rate:service:{SERVICE_NAME}"

    metrics_registry = registry if registry is not None else CollectorRegistry()
    limiter = RateLimiter.from_url(
        valkey_url,
        protocol=protocol,
        failure_mode=failure_mode,
        timeout=timeout,
        metrics=RateLimitMetrics(metrics_registry),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await limiter.aclose()

    app = FastAPI(title="valkey-ratelimit example", lifespan=lifespan)
    app.state.rate_limiter = limiter

    @app.get("/items")
    @verify_and_limit(
        limit=USER_LIMIT_PER_MINUTE,
        window=60,
        key_func=user_key,
        algorithm="sliding",
        name="user",
        rules=[
            Rule.of(
                "service",
                limit=SERVICE_LIMIT_PER_MINUTE,
                window=60,
                key_func=service_key,
                algorithm="fixed",
            )
        ],
    )
    async def list_items() -> dict[str, list[str]]:
        return {"items": ["apple", "pear"]}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app(os.environ.get("VALKEY_URL", "valkey://127.0.0.1:6379"))
