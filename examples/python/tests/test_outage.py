"""The outage policy with a server that is stopped, or paused with SIGSTOP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import valkey
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from valkey._parsers.base import BaseParser
from valkey.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from valkey_ratelimit import (
    FailureMode,
    FixedWindow,
    InvalidRequestError,
    Limit,
    RateLimiter,
    RateLimitMetrics,
    Rule,
    verify_and_limit,
)

from valkey_ratelimit.client import ReplyError
from valkey_ratelimit.limiter import classify_error

from conftest import ValkeyServer

TIMEOUT_S = 0.05
# A failed check takes about TIMEOUT_S; the rest is slack for a busy test machine.
FAILED_CHECK_MAX_S = 0.5

def user_key(request: Request) -> str:
    return f"rate:user:{request.headers['X-User-Id']}"


def service_key(request: Request) -> str:
    return "rate:service:orders"


def build_app(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()
    app.state.rate_limiter = limiter
    service = Rule.of("service", limit=100, window=60, key_func=service_key)

    @app.get("/orders")
    @verify_and_limit(limit=5, window=60, key_func=user_key, name="user", rules=[service])
    async def orders() -> dict[str, bool]:
        return {"ok": True}

    return app


class Harness:
    """An app, its limiter and metrics registry, on a server the test may stop or pause."""

    def __init__(self, server: ValkeyServer, failure_mode: FailureMode, attempts: int = 1):
        self.server = server
        self.registry = CollectorRegistry()
        self.limiter = RateLimiter.from_url(
            server.url,
            failure_mode=failure_mode,
            timeout=TIMEOUT_S,
            metrics=RateLimitMetrics(self.registry),
            attempts=attempts,
        )
        transport = httpx.ASGITransport(app=build_app(self.limiter))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://test")

    async def get_orders(self) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.http.get("/orders", headers={"X-User-Id": "7"})
        return response, time.monotonic() - started

    def errors(self, kind: str) -> float | None:
        labels = {"limiter": "user+service", "kind": kind}
        return self.registry.get_sample_value("valkey_ratelimit_errors_total", labels)

    def decisions(self, outcome: str) -> float | None:
        labels = {"limiter": "user+service", "outcome": outcome}
        return self.registry.get_sample_value("valkey_ratelimit_decisions_total", labels)

    async def close(self) -> None:
        await self.http.aclose()
        await self.limiter.aclose()


@pytest.fixture
async def harnesses(disposable_server: ValkeyServer) -> AsyncIterator[list[Harness]]:
    """Built harnesses, closed at the end; tests append the ones they build."""
    built: list[Harness] = []
    yield built
    disposable_server.resume()
    for harness in built:
        await harness.close()


def failure_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "error_kind")]


async def test_fail_open_when_stopped(
    disposable_server: ValkeyServer, harnesses: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(disposable_server, FailureMode.OPEN)
    harnesses.append(harness)
    healthy, _ = await harness.get_orders()
    disposable_server.stop()

    with caplog.at_level(logging.WARNING, logger="valkey_ratelimit"):
        response, elapsed = await harness.get_orders()
    records = failure_records(caplog)

    assert healthy.status_code == 200
    assert response.status_code == 200
    assert "RateLimit" not in response.headers
    assert "RateLimit-Policy" not in response.headers
    assert elapsed < FAILED_CHECK_MAX_S
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].error_kind == "connection"  # type: ignore[attr-defined]
    assert records[0].key == "rate:user:7,rate:service:orders"  # type: ignore[attr-defined]
    assert records[0].policy == "user,service"  # type: ignore[attr-defined]
    assert records[0].failure_mode == "open"  # type: ignore[attr-defined]
    assert "Connection" in records[0].error  # type: ignore[attr-defined]
    assert harness.errors("connection") == 1
    assert harness.decisions("fail_open") == 1
    assert harness.decisions("allowed") == 1


async def test_fail_closed_when_stopped(
    disposable_server: ValkeyServer, harnesses: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(disposable_server, FailureMode.CLOSED)
    harnesses.append(harness)
    disposable_server.stop()

    with caplog.at_level(logging.WARNING, logger="valkey_ratelimit"):
        response, elapsed = await harness.get_orders()
    detail = response.json()["detail"]
    records = failure_records(caplog)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "RateLimit" not in response.headers
    assert detail["error"] == "rate_limiter_unavailable"
    assert detail["retry_after_seconds"] == 1
    assert elapsed < FAILED_CHECK_MAX_S
    assert len(records) == 1
    assert records[0].failure_mode == "closed"  # type: ignore[attr-defined]
    assert harness.errors("connection") == 1
    assert harness.decisions("fail_closed") == 1


async def test_fail_closed_on_timeout(
    disposable_server: ValkeyServer, harnesses: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(disposable_server, FailureMode.CLOSED)
    harnesses.append(harness)
    healthy, _ = await harness.get_orders()
    disposable_server.pause()

    try:
        with caplog.at_level(logging.WARNING, logger="valkey_ratelimit"):
            response, elapsed = await harness.get_orders()
    finally:
        disposable_server.resume()
    recovered, _ = await harness.get_orders()
    records = failure_records(caplog)

    assert healthy.status_code == 200
    assert response.status_code == 503
    assert TIMEOUT_S * 0.9 < elapsed < FAILED_CHECK_MAX_S
    assert len(records) == 1
    assert records[0].error_kind == "timeout"  # type: ignore[attr-defined]
    assert harness.errors("timeout") == 1
    assert harness.decisions("fail_closed") == 1
    # The paused server runs the timed-out command once it resumes, so that request is
    # charged though it was denied. Its late reply went to a dropped connection, not here.
    assert recovered.status_code == 200
    assert recovered.headers["RateLimit"] == '"user";r=2;t=60, "service";r=97;t=60'


async def test_fail_open_on_timeout_while_connecting(
    disposable_server: ValkeyServer, harnesses: list[Harness]
) -> None:
    harness = Harness(disposable_server, FailureMode.OPEN)
    harnesses.append(harness)
    disposable_server.pause()

    try:
        response, elapsed = await harness.get_orders()
    finally:
        disposable_server.resume()

    assert response.status_code == 200
    assert "RateLimit" not in response.headers
    assert elapsed < FAILED_CHECK_MAX_S
    assert harness.errors("timeout") == 1
    assert harness.decisions("fail_open") == 1


async def test_retries_stay_within_deadline(
    disposable_server: ValkeyServer, harnesses: list[Harness]
) -> None:
    harness = Harness(disposable_server, FailureMode.OPEN, attempts=5)
    harnesses.append(harness)
    disposable_server.stop()

    response, elapsed = await harness.get_orders()
    # The jittered delays may outlast the deadline, which then ends the check as a timeout.
    failures = [harness.errors("connection") or 0, harness.errors("timeout") or 0]

    assert response.status_code == 200
    assert elapsed < FAILED_CHECK_MAX_S
    assert sum(failures) == 1
    assert harness.decisions("fail_open") == 1


async def test_retry_recovers_stale_connection(
    disposable_server: ValkeyServer, harnesses: list[Harness]
) -> None:
    harness = Harness(disposable_server, FailureMode.CLOSED, attempts=2)
    harnesses.append(harness)
    await harness.get_orders()
    # Dropping every client connection leaves the pooled one stale, so the first attempt
    # fails and the second reconnects.
    admin = valkey.Valkey(host="127.0.0.1", port=disposable_server.port)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()

    response, _ = await harness.get_orders()

    assert response.status_code == 200
    assert harness.errors("connection") is None


async def test_retry_recovers_timed_out_attempt(
    disposable_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Each of the three attempts gets a third of the deadline as its socket timeout, so the
    # first one times out while the server is stopped and a later one gets the reply.
    limiter = RateLimiter.from_url(
        disposable_server.url, failure_mode=FailureMode.CLOSED, timeout=1.5, attempts=3
    )
    limits = [Limit("user", "rate:user:retried", FixedWindow(10, 60))]
    connection_options = limiter.client.valkey.connection_pool.connection_kwargs
    disposable_server.pause()
    asyncio.get_running_loop().call_later(0.7, disposable_server.resume)
    try:
        with caplog.at_level(logging.INFO, logger="valkey_ratelimit"):
            verdict = await limiter.check(limits)
    finally:
        disposable_server.resume()
        await limiter.aclose()
    retries = [record for record in caplog.records if hasattr(record, "attempt")]

    assert connection_options["socket_timeout"] == pytest.approx(0.5)
    assert len(retries) >= 1
    assert retries[0].attempt == 1  # type: ignore[attr-defined]
    assert verdict.allowed
    assert not verdict.failed
    assert verdict.combined is not None


async def test_fail_open_when_out_of_memory(
    disposable_server: ValkeyServer, harnesses: list[Harness]
) -> None:
    harness = Harness(disposable_server, FailureMode.OPEN)
    harnesses.append(harness)
    await harness.limiter.client.valkey.config_set("maxmemory", 1)

    response, _ = await harness.get_orders()

    assert response.status_code == 200
    assert "RateLimit" not in response.headers
    assert harness.errors("server") == 1
    assert harness.decisions("fail_open") == 1


async def test_invalid_request_raises(
    disposable_server: ValkeyServer, harnesses: list[Harness]
) -> None:
    harness = Harness(disposable_server, FailureMode.OPEN)
    harnesses.append(harness)
    await harness.limiter.client.valkey.set("rate:string", "not a limiter")
    limits = [Limit("user", "rate:string", FixedWindow(1, 1))]

    with pytest.raises(InvalidRequestError, match="WRONGTYPE"):
        await harness.limiter.check(limits)
    labels = {"limiter": "user", "kind": "invalid"}
    assert harness.registry.get_sample_value("valkey_ratelimit_errors_total", labels) == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), "timeout"),
        (ValkeyTimeoutError("slow"), "timeout"),
        (ValkeyConnectionError("refused"), "connection"),
        (ConnectionRefusedError(), "connection"),
        (AuthenticationError("invalid password"), "connection"),
        (BusyLoadingError("LOADING"), "server"),
        (OutOfMemoryError("OOM"), "server"),
        (ReadOnlyError("READONLY"), "server"),
        (ResponseError("BUSY running a script"), "server"),
        (BaseParser.parse_error("BUSY Valkey is busy running a script"), "server"),
        (BaseParser.parse_error("CLUSTERDOWN The cluster is down"), "server"),
        (BaseParser.parse_error("MASTERDOWN Link with MASTER is down"), "server"),
        (BaseParser.parse_error("TRYAGAIN Multiple keys request during rehashing"), "server"),
        (BaseParser.parse_error("BUSYKEY Target key name already exists."), "invalid"),
        (ResponseError("WRONGTYPE"), "invalid"),
        (ReplyError("bad shape"), "invalid"),
        (ValueError("bug"), None),
    ],
)
def test_errors_classified(error: Exception, kind: str | None) -> None:
    assert classify_error(error) == kind
