"""CUBEHOOK_REDIS_URL, read without any Redis: every form, and every malformed one a clear
ConfigError that names the setting and never the password."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from service.redis import async_redis_client, redis_client
from service.redis_url import SentinelTarget, parse_redis_url
from service.settings import Settings

PASSWORD = "s3cr3t-p@ss"


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://user:pw@redis.internal:6380/2", "unix:///run/redis.sock"],
)
def test_one_server_urls_are_left_to_redis_py(url: str) -> None:
    assert parse_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://s1:26379,s2:26380,s3/mymaster",
            SentinelTarget((("s1", 26379), ("s2", 26380), ("s3", 26379)), "mymaster"),
        ),
        (
            "redis+sentinel://cubehook:pw%40x@s1:1/main/3",
            SentinelTarget((("s1", 1),), "main", db=3, username="cubehook", password="pw@x"),
        ),
        (
            "redis+sentinel://:pw@[::1]:26379,[fe80::1]/main/",
            SentinelTarget((("::1", 26379), ("fe80::1", 26379)), "main", password="pw"),
        ),
        (
            "rediss+sentinel://s1:26379/main?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=REQUIRED"
            "&sentinel_password=spw&sentinel_username=watcher",
            SentinelTarget(
                (("s1", 26379),), "main", tls=True, sentinel_tls=True, sentinel_username="watcher",
                sentinel_password="spw", tls_options=(("ssl_ca_certs", "/etc/ca.pem"), ("ssl_cert_reqs", "required")),
            ),
        ),
        (
            "rediss+sentinel://s1/main?sentinel_ssl=false",
            SentinelTarget((("s1", 26379),), "main", tls=True, sentinel_tls=False),
        ),
        (
            "REDIS+SENTINEL://s1:26379/main ",
            SentinelTarget((("s1", 26379),), "main"),
        ),
    ],
)  # fmt: skip
def test_sentinel_urls(url: str, expected: SentinelTarget) -> None:
    target = parse_redis_url(url)
    assert target == expected
    assert PASSWORD not in repr(target)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:6379", "not a URL"),
        ("", "not a URL"),
        ("http://redis:6379", "unknown scheme 'http'"),
        ("redis+sentinel://s1:26379", "names its service"),
        ("redis+sentinel://s1:26379/", "names its service"),
        ("redis+sentinel:///main", "empty"),
        ("redis+sentinel://s1,/main", "empty"),
        ("redis+sentinel://s1:port/main", "'s1:port' has no valid port"),
        ("redis+sentinel://s1:0/main", "no valid port"),
        ("redis+sentinel://s1:70000/main", "no valid port"),
        ("redis+sentinel://[::1/main", "[IPv6]:port"),
        ("redis+sentinel://s1/main/one", "must be a number"),
        ("redis+sentinel://s1/main?password=x", "unknown option 'password'"),
        ("redis+sentinel://s1/main?sentinel_password=a&sentinel_password=b", "given twice"),
        ("rediss+sentinel://s1/main?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("redis+sentinel://s1/main?ssl_ca_certs=/ca.pem", "need TLS"),
        ("redis+sentinel://s1/main?sentinel_ssl=perhaps", "sentinel_ssl must be true or false"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_url(url)
    message = str(caught.value)
    assert message.startswith("CUBEHOOK_REDIS_URL: ")
    assert says in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        f"redis+sentinel://user:{PASSWORD}@s1:bad/main",
        f"redis+sentinel://user:{PASSWORD}@s1/main?nope=1",
        f"redis+sentinel://user:{PASSWORD}@s1/main?sentinel_password={PASSWORD}&ssl_keyfile=/k",
        f"redis+sentinel://user:{PASSWORD}@/main",
        f"redis://user:{PASSWORD}@host:notaport/0",
    ],
)
def test_no_error_echoes_the_password(url: str) -> None:
    settings = Settings(redis_url=url)
    for build in (redis_client, async_redis_client):
        with pytest.raises(ConfigError) as caught:
            build(settings)
        assert PASSWORD not in str(caught.value)
        assert "p@ss" not in str(caught.value)
        assert str(caught.value).startswith("CUBEHOOK_REDIS_URL: ")


def test_a_sentinel_client_carries_the_timeouts_and_the_credentials_where_they_belong() -> None:
    settings = Settings(
        redis_url="rediss+sentinel://app:pw@s1:26379,s2:26380/main/2?sentinel_password=spw&ssl_cert_reqs=none",
        redis_timeout_seconds=1.5,
    )
    client = redis_client(settings)
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "pw", 2)
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 1.5
    assert kwargs["ssl_cert_reqs"] == "none"
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    for sentinel in sentinels:
        sentinel_kwargs = sentinel.connection_pool.connection_kwargs
        assert sentinel_kwargs["password"] == "spw"
        assert sentinel_kwargs["socket_timeout"] == 1.5
        assert sentinel.connection_pool.connection_class.__name__ == "SSLConnection"
    client.close()
