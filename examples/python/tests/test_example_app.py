"""The example app: a limited endpoint and a /metrics route, on the shared server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

import example_app

from conftest import ValkeyServer


@pytest.fixture
async def http(
    valkey_server: ValkeyServer, protocol: int, prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = example_app.create_app(
        valkey_server.url,
        registry=CollectorRegistry(),
        timeout=2.0,
        protocol=protocol,
        key_prefix=prefix,
    )
    limiter = app.state.rate_limiter
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await limiter.aclose()


async def test_items_limited_per_user(http: httpx.AsyncClient) -> None:
    allowed = [await http.get("/items", headers={"X-User-Id": "42"}) for _ in range(5)]
    denied = await http.get("/items", headers={"X-User-Id": "42"})

    assert [response.status_code for response in allowed] == [200] * 5
    assert allowed[0].json() == {"items": ["apple", "pear"]}
    assert allowed[0].headers["RateLimit-Policy"] == '"user";q=5;w=60, "service";q=100;w=60'
    assert allowed[0].headers["RateLimit"] == '"user";r=4;t=60, "service";r=99;t=60'
    assert denied.status_code == 429
    assert denied.json()["detail"]["denied_by"] == ["user"]


async def test_items_reject_missing_user(http: httpx.AsyncClient) -> None:
    response = await http.get("/items")

    assert response.status_code == 401


async def test_metrics_route_counts_decisions(http: httpx.AsyncClient) -> None:
    for _ in range(6):
        await http.get("/items", headers={"X-User-Id": "42"})

    response = await http.get("/metrics")
    lines = response.text.splitlines()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    allowed = 'valkey_ratelimit_decisions_total{limiter="user+service",outcome="allowed"} 5.0'
    denied = 'valkey_ratelimit_decisions_total{limiter="user+service",outcome="denied"} 1.0'
    assert allowed in lines
    assert denied in lines
    assert 'valkey_ratelimit_decision_seconds_count{limiter="user+service"} 6.0' in lines
