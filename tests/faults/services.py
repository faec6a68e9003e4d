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
        # A second server on the same port would exit at once (the port is taken) while the
        # first kept answering: the caller would think it restarted, and stop() would leak it.
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
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
        if self.process.poll() is not None:  # someone else answers on this port
            raise RuntimeError(f"redis-server on port {self.port} exited: the port is taken")

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


def spare_port(ports: range) -> int:
    """A loopback port of `ports` nobody listens on or holds right now."""
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no spare port in {ports.start}-{ports.stop - 1}")


@dataclass
class SentinelCluster:
    """A private master, its replica and three sentinels (quorum 2) watching them as `service`."""

    master: PrivateRedis
    replica: PrivateRedis
    sentinel_ports: list[int]
    service: str

    @property
    def url(self) -> str:
        """Guichet's REDIS_URL for this cluster (docs/operations.md, "Redis roles")."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers names it."""
        import redis

        for port in self.sentinel_ports:
            try:
                answer = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(
                    self.service
                )
            except redis.RedisError:
                continue
            if answer:
                return int(answer[1])
        return None

    def kill_master(self) -> None:
        """SIGKILL the master (no shutdown, no last save): what a crashed machine does."""
        process = self.master.process
        assert process is not None
        process.kill()
        process.wait(timeout=10)
        self.master.process = None


@contextmanager
def sentinel_cluster(
    ports: range, service: str = "guichet", down_after_ms: int = 1000
) -> Iterator[SentinelCluster]:
    """Master + replica (persistent, noeviction) + 3 sentinels, all on spare ports of `ports`.

    Every process is ours and stopped afterwards (SIGTERM, by its own handle)."""
    binary = require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="guichet-sentinel-cluster-") as scratch:
        root = Path(scratch)
        (root / "master").mkdir()
        (root / "replica").mkdir()
        master = PrivateRedis(
            port=spare_port(ports), directory=root / "master", args=SAFE_REDIS_ARGS
        )
        master.start()
        sentinels: list[subprocess.Popen[bytes]] = []
        replica: PrivateRedis | None = None
        try:
            replica = PrivateRedis(
                port=spare_port(ports),
                directory=root / "replica",
                args=[*SAFE_REDIS_ARGS, "--replicaof", "127.0.0.1", str(master.port)],
            )
            replica.start()
            _wait_replication(replica)
            ports_used: list[int] = []
            for n in range(3):
                port = spare_port(ports)
                directory = root / f"sentinel-{n}"
                directory.mkdir()
                config = directory / "sentinel.conf"
                config.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                    f"sentinel monitor {service} 127.0.0.1 {master.port} 2\n"
                    f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                    f"sentinel failover-timeout {service} 10000\n"
                    f"sentinel parallel-syncs {service} 1\n"
                )
                sentinels.append(
                    subprocess.Popen(
                        [binary, str(config), "--sentinel"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                wait_port(port)
                ports_used.append(port)
            cluster = SentinelCluster(master, replica, ports_used, service)
            _wait_sentinels_see_each_other(cluster)
            yield cluster
        finally:
            for process in sentinels:
                process.terminate()
                process.wait(timeout=10)
            if replica is not None:
                replica.stop()
            master.stop()


def _wait_replication(replica: PrivateRedis, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "master_link_status:up" in replica.cli("INFO", "replication"):
            return
        time.sleep(0.2)
    raise TimeoutError("the replica never synchronised with the master")


def _wait_sentinels_see_each_other(cluster: SentinelCluster, timeout: float = 30.0) -> None:
    """Each sentinel knows the two others and the replica: a failover can be agreed on."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = True
        for port in cluster.sentinel_ports:
            fields = redis.Redis(port=port, socket_timeout=1).sentinel_master(cluster.service)
            if fields.get("num-other-sentinels", 0) < 2 or fields.get("num-slaves", 0) < 1:
                ready = False
        if ready:
            return
        time.sleep(0.3)
    raise TimeoutError("the sentinels did not discover each other and the replica")
