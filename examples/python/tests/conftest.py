"""Fixtures that run real valkey-server processes with the module loaded.

VALKEY_SERVER and RATELIMIT_MODULE pick the binaries; a relative path is taken from the
repository root, as the Makefile exports them. Each server listens on a free 127.0.0.1 port
and is stopped by its own PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import valkey
import valkey.asyncio

REPO_ROOT = Path(__file__).resolve().parents[3]
START_ATTEMPTS = 3
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def configured_path(variable: str, default: str) -> Path:
    path = Path(os.environ.get(variable) or default)
    return path if path.is_absolute() else REPO_ROOT / path


def free_port() -> int:
    """Pick a port the kernel reports free. Another process may take it before the server
    binds it, so the caller retries on a failed start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ValkeyServer:
    """One valkey-server process with the module loaded, on 127.0.0.1."""

    def __init__(self, server: Path, module: Path, directory: Path) -> None:
        self.server = server
        self.module = module
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "valkey.log"

    def start(self) -> None:
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    str(self.server),
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--logfile", str(self.log_path),
                    "--loadmodule", str(self.module),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self.wait_until_ready():
                return
            self.stop()
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        raise RuntimeError(f"valkey-server did not start in {START_ATTEMPTS} attempts:\n{log}")

    def wait_until_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        client = valkey.Valkey(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if client.ping():
                        return True
                except (valkey.exceptions.ConnectionError, valkey.exceptions.TimeoutError):
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def pause(self) -> None:
        """Stop the process with SIGSTOP: connections open, but nothing replies."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # A paused server would not act on SIGTERM until it runs again.
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)


def start_server(directory: Path) -> ValkeyServer:
    server = configured_path("VALKEY_SERVER", ".valkey/bin/valkey-server")
    module = configured_path("RATELIMIT_MODULE", "target/release/libvalkey_ratelimit.so")
    if not server.is_file():
        pytest.fail(f"valkey-server not found at {server}: run `make server` or set VALKEY_SERVER")
    if not module.is_file():
        pytest.fail(
            f"module not found at {module}: run `cargo build --release --lib` "
            "or set RATELIMIT_MODULE"
        )
    instance = ValkeyServer(server, module, directory)
    instance.start()
    return instance


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """A server shared by the whole session; tests keep apart by key prefix."""
    instance = start_server(tmp_path_factory.mktemp("valkey"))
    yield instance
    instance.stop()


@pytest.fixture
def disposable_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A server of the test's own, for tests that stop or pause it."""
    instance = start_server(tmp_path)
    yield instance
    instance.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
async def valkey_client(
    valkey_server: ValkeyServer, protocol: int
) -> AsyncIterator[valkey.asyncio.Valkey]:
    client = valkey.asyncio.Valkey.from_url(valkey_server.url, protocol=protocol)
    yield client
    await client.aclose()
