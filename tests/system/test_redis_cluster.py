"""The service on a real Redis Cluster: three primaries with a replica each, on
local ports, started and stopped by the test (and, more briefly, behind Sentinel).

Every command the service sends stays in one hash slot (a session and its user
share `{u<id>}`; each throttle bucket is its own call), so login, the session
check, refresh storms, revocation and throttles work unchanged; when a primary
dies, its replica takes over and the service carries on without a restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
import redis
import requests

from tests.factories import user_create
from tests.servers import free_port, spawn
from tokens import store
from tokens.models import Session

from .conftest import (
    THROTTLES_OFF,
    claims_of,
    code_of,
    csrf_token,
    eventually,
    login,
    login_pair,
    logout,
    me,
    pair_from,
    post,
    refresh,
    storm,
)

pytestmark = pytest.mark.system

LOGIN = "/api/auth/login/"
# How long a node may be silent before the others fail it over (milliseconds).
NODE_TIMEOUT_MS = 1500


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    # Each node's cluster bus listens on its port + 10000, which must be free too.
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port + 10000 < 65536 and _is_free(port + 10000):
            ports.append(port)
    return ports


class LocalCluster:
    def __init__(self, directory, *, primaries: int = 3, replicas: int = 1) -> None:
        self.directory = directory
        self.primaries, self.replicas = primaries, replicas
        self.ports = _cluster_ports(primaries * (1 + replicas))
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> LocalCluster:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        for port in self.ports:
            conf = str(self.directory / f"nodes-{port}.conf")
            cmd = [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", conf, "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--dir", str(self.directory), "--save", "", "--appendonly", "no",
            ]  # fmt: skip
            self.procs[port] = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.ports:
            assert eventually(lambda port=port: self._pings(port)), f"redis-server on {port} did not start"
        create = [
            shutil.which("redis-cli") or "/usr/bin/redis-cli", "--cluster", "create",
            *(f"127.0.0.1:{port}" for port in self.ports),
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
        ]  # fmt: skip
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        assert eventually(self.healthy, timeout=30), "the cluster did not come up"
        assert eventually(self._replicas_ready, timeout=60), "the replicas did not attach"
        return self

    def _replicas_ready(self) -> bool:
        """Every replica is in sync with its primary, and every node knows it."""
        expected = len(self.ports) - self.primaries
        try:
            synced = 0
            for port in self.ports:
                info = redis.Redis(port=port, socket_timeout=0.5).info("replication")
                synced += info["role"] == "slave" and info.get("master_link_status") == "up"
                nodes = redis.Redis(port=port, socket_timeout=0.5).execute_command("CLUSTER", "NODES")
                text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
                flags = [line.split()[2] for line in text.splitlines() if line.strip()]
                if sum("slave" in flag.split(",") for flag in flags) != expected:
                    return False
        except redis.RedisError:
            return False
        return synced == expected

    def _pings(self, port: int) -> bool:
        try:
            return redis.Redis(port=port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def alive_ports(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def healthy(self) -> bool:
        """Every live node says the cluster is ok and every slot has a live primary."""
        try:
            for port in self.alive_ports():
                info = redis.Redis(port=port, socket_timeout=0.5).execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
            slots = redis.Redis(port=self.alive_ports()[0], socket_timeout=0.5).execute_command("CLUSTER", "SLOTS")
        except redis.RedisError:
            return False
        alive = set(self.alive_ports())
        return sum(end - start + 1 for start, end, primary, *_ in slots if int(primary[1]) in alive) == 16384

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.alive_ports()[0], socket_timeout=1)

    def primary_port_for(self, key: str) -> int:
        return self.client().get_node_from_key(key).port

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)


def cluster_value(cluster: LocalCluster, pair) -> str | None:
    raw = cluster.client().get(store.session_key(pair.session_id, claims_of(pair.access)["user_id"]))
    return raw.decode() if raw is not None else None


@pytest.fixture
def redis_cluster(tmp_path):
    cluster = LocalCluster(tmp_path)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_service_on_redis_cluster_survives_a_primary_failover(redis_cluster, start_servers):
    (server,) = start_servers(
        1, workers=2, **{**THROTTLES_OFF, "AUTH_THROTTLE_LOGIN": "4/min"}, REDIS_URL=redis_cluster.url
    )
    base = server.url
    for name in ("alice", "bob", "carol", "mallory"):
        user_create(username=name)
    csrf = csrf_token(base)

    alice = login_pair(base, "alice", csrf=csrf)
    bob = login_pair(base, "bob", csrf=csrf)
    assert me(base, alice.access).json()["username"] == "alice"
    alice_id = claims_of(alice.access)["user_id"]
    session_key = store.session_key(alice.session_id, alice_id)
    user_key = store.user_key(alice_id)
    cluster = redis_cluster.client()
    # The session check is one MGET: both keys in one slot.
    assert cluster.keyslot(session_key) == cluster.keyslot(user_key)
    assert cluster.get(session_key) == f"1:{alice_id}".encode()

    # A refresh storm: one rotation, the same successor for every racer.
    replies = storm(8, lambda i: refresh(base, alice.refresh, csrf=csrf))
    assert [r.status_code for r in replies] == [200] * 8
    assert len({pair_from(r) for r in replies}) == 1
    alice = pair_from(replies[0])
    assert Session.objects.get(pk=alice.session_id).generation == 2

    # Revocation reaches the cluster.
    assert logout(base, bob, csrf=csrf).status_code == 204
    response = me(base, bob.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert cluster.get(store.session_key(bob.session_id, claims_of(bob.access)["user_id"])) == b"0:logout"

    # Throttle scripts run on the cluster (their keys each in one slot).
    wrong = [post(base, LOGIN, csrf=csrf, json={"username": "mallory", "password": "nope"}) for _ in range(4)]
    assert [r.status_code for r in wrong] == [401] * 4
    response = login(base, "mallory", csrf=csrf)
    assert (response.status_code, code_of(response)) == (429, "throttled")

    # The primary holding Alice's slot dies; its replica takes over.
    redis_cluster.kill(redis_cluster.primary_port_for(session_key))
    answers: set[tuple[int, str | None]] = set()

    def recovered() -> bool:
        response = me(base, alice.access)
        answers.add((response.status_code, code_of(response)))
        revoked = me(base, bob.access)
        assert (revoked.status_code, code_of(revoked)) == (401, "session_revoked")
        return redis_cluster.healthy() and response.status_code == 200

    assert eventually(recovered, timeout=60, interval=0.3)
    # While it failed over, Alice was answered from the database or told to retry.
    assert answers <= {(200, None), (503, "service_unavailable")}

    # Afterwards everything works on the new primary, without a restart (a worker
    # that has not used the failed node yet learns the new layout from its first
    # failed command, which is answered with 503 or from the database).
    logins: list[requests.Response] = []
    assert eventually(lambda: logins.append(login(base, "carol", csrf=csrf)) or logins[-1].status_code == 200)
    assert {(r.status_code, code_of(r)) for r in logins[:-1]} <= {(503, "service_unavailable")}
    carol = pair_from(logins[-1])
    assert me(base, carol.access).json()["username"] == "carol"
    response = refresh(base, alice.refresh, csrf=csrf)
    assert response.status_code == 200, response.text
    assert me(base, pair_from(response).access).json()["username"] == "alice"
    assert eventually(lambda: logout(base, carol, csrf=csrf).status_code == 204)
    response = me(base, carol.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert cluster_value(redis_cluster, carol) == "0:logout"


@pytest.fixture
def redis_sentinel(private_redis, tmp_path):
    """A Sentinel watching the private redis-server as service `mymaster`."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor mymaster 127.0.0.1 {private_redis.port} 1\n"
    )
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = spawn([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def knows_primary() -> bool:
        try:
            found = redis.Redis(port=port, socket_timeout=0.5).execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"
            )
        except redis.RedisError:
            return False
        return found is not None and int(found[1]) == private_redis.port

    try:
        assert eventually(knows_primary), "the sentinel did not start"
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def test_service_through_sentinel_finds_its_primary(private_redis, redis_sentinel, start_servers):
    (server,) = start_servers(
        1, workers=2, **THROTTLES_OFF, REDIS_URL="redis://mymaster/0", REDIS_SENTINELS=redis_sentinel
    )
    base = server.url
    user_create(username="alice")
    csrf = csrf_token(base)

    alice = login_pair(base, "alice", csrf=csrf)
    assert me(base, alice.access).json()["username"] == "alice"
    key = store.session_key(alice.session_id, claims_of(alice.access)["user_id"])
    assert redis.Redis(port=private_redis.port).get(key) == f"1:{claims_of(alice.access)['user_id']}".encode()

    assert logout(base, alice, csrf=csrf).status_code == 204
    response = me(base, alice.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert redis.Redis(port=private_redis.port).get(key) == b"0:logout"
