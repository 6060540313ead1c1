"""The suite's own servers: each one a test starts is stopped, restarts included."""

import redis

from . import servers
from .servers import PrivateRedis


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


def test_private_redis_restarted_on_its_port_is_stopped_by_its_kill():
    server = PrivateRedis().start()
    first = server.proc
    server.kill()
    server.restart()
    assert _answers(server.port)

    server.kill()

    assert first.poll() is not None
    assert server.proc.poll() is not None
    assert not _answers(server.port)
    assert servers.still_running() == []


def test_stop_all_kills_and_names_a_leftover_server():
    server = PrivateRedis().start()

    leftovers = servers.stop_all()

    assert len(leftovers) == 1 and leftovers[0].startswith(servers.shutil.which("redis-server") or "/usr/bin/redis")
    assert server.proc.poll() is not None
    assert not _answers(server.port)
