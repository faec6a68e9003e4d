"""Private throwaway services for fault tests: a Redis on a spare loopback port, the gate rule."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a service is missing locally; in CI a missing service is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """The path of a server binary the test starts itself."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    return str(path)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, *, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class PrivateRedis:
    """One redis-server process of our own, stoppable and restartable on the same port."""

    port: int
    directory: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                require_binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--protected-mode",
                "yes",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def cli(self, *args: str) -> str:
        """Run one redis-cli command against this instance."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout


SAFE_REDIS_ARGS = ["--appendonly", "yes", "--maxmemory-policy", "noeviction"]


@contextmanager
def private_redis(args: list[str] | None = None) -> Iterator[PrivateRedis]:
    """A redis-server on a spare port in a temporary directory, stopped afterwards."""
    require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="guichet-redis-") as directory:
        server = PrivateRedis(
            port=free_port(),
            directory=Path(directory),
            args=SAFE_REDIS_ARGS if args is None else args,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def private_sentinel(master: PrivateRedis, service: str = "guichet") -> Iterator[int]:
    """A Redis Sentinel on a spare port watching `master` as `service`; yields its port."""
    binary = require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="guichet-sentinel-") as directory:
        port = free_port()
        config = Path(directory) / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
        )
        process = subprocess.Popen(
            [binary, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)
