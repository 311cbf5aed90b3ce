"""A private three-master Redis Cluster for tests, on free loopback ports.

Started on first use (once per session): three ``redis-server --cluster-enabled yes`` processes
joined by ``redis-cli --cluster create`` with no replicas, then awaited until every node reports
``cluster_state:ok``. Stopped when the session ends. Tests get a fresh store by flushing every
master (``fresh_url``).
"""

from __future__ import annotations

import atexit
import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import redis

from helpers import wait_until
from redis_server import RedisServer

MASTERS = 3
BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus), so ports stay < 55536."""


def free_cluster_port() -> int:
    """A port free on loopback, together with its cluster bus port."""
    for _ in range(200):
        port = random.randrange(20_000, 45_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisCluster:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
        for i in range(MASTERS):
            folder = self.directory / f"node{i}"
            folder.mkdir()
            self.nodes.append(RedisServer(
                folder, "--cluster-enabled", "yes", "--cluster-config-file",
                str(folder / "nodes.conf"), "--cluster-node-timeout", "2000",
                port=free_cluster_port(),
            ).start())
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node sees the whole cluster healthy (all slots covered)."""
        wait_until(lambda: all(self._ok(n) for n in self.nodes), timeout=timeout,
                   message="cluster_state:ok on every node")

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        try:
            with node.client() as client:
                info = client.execute_command("CLUSTER", "INFO")
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text

    def flush(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.flushall()
                client.script_flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


_shared: RedisCluster | None = None


def shared_cluster() -> RedisCluster:
    """The session's private cluster (started on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        directory = Path(tempfile.mkdtemp(prefix="conveyor-redis-cluster-"))
        cluster = RedisCluster(directory)
        atexit.register(_stop_shared, cluster, directory)
        _shared = cluster.start()
    return _shared


def _stop_shared(cluster: RedisCluster, directory: Path) -> None:
    cluster.stop()
    with contextlib.suppress(OSError):
        shutil.rmtree(directory)


def fresh_url() -> str:
    """The URL of an empty store on the shared private cluster."""
    cluster = shared_cluster()
    cluster.flush()
    return cluster.url
