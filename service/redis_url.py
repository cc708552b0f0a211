"""CUBEHOOK_REDIS_URL, read: which Redis to reach and how (pure: no I/O, no Redis client).

Four forms (docs/redis.md)::

    redis://[user:password@]host:port[/db]              one server, as redis-py's from_url reads it
    rediss://...                                        the same over TLS
    redis+sentinel://[user:password@]host1:port1[,host2:port2,...]/SERVICE[/DB][?options]
    rediss+sentinel://...                               TLS to the data nodes, and the sentinels

The user and password of a sentinel URL authenticate to the data nodes (the primary and its
replicas); the sentinels take their own (``sentinel_username``, ``sentinel_password``), as
redis-py's ``Sentinel(sentinel_kwargs=...)`` does. A sentinel without a port is on 26379 (Redis
Sentinel's default: https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/).
Options: those below, named as redis-py names its keyword arguments; an unknown one is refused
(a typo must not silently drop TLS verification).

A malformed URL is a ConfigError naming CUBEHOOK_REDIS_URL and the part that is wrong, never the
password: messages quote the scheme, a sentinel's address or an option's name, none of which holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from service.errors import ConfigError

SETTING = "CUBEHOOK_REDIS_URL"
DIRECT_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS
SENTINEL_PORT = 26379
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
CERT_REQS = ("none", "optional", "required")  # redis-py's spellings of ssl.CERT_*
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password", "sentinel_ssl")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A primary found through sentinels."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False  # to the data nodes
    sentinel_tls: bool = False
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls_options: tuple[tuple[str, str], ...] = ()  # ssl_* keyword arguments, for every TLS connection


def invalid(problem: str) -> ConfigError:
    return ConfigError(f"{SETTING}: {problem}")


def scheme_of(url: str) -> str:
    scheme, found, _rest = url.partition("://")
    if not found or not scheme:
        raise invalid(
            "not a URL: expected redis://, rediss://, redis+sentinel:// or rediss+sentinel:// (docs/redis.md)"
        )
    return scheme.lower()


def parse_redis_url(url: str) -> str | SentinelTarget:
    """The URL itself for one server (redis-py's from_url reads it), else the sentinels to ask.
    Raises ConfigError."""
    scheme = scheme_of(url.strip())
    if scheme in DIRECT_SCHEMES:
        return url.strip()
    if scheme not in SENTINEL_SCHEMES:
        raise invalid(
            f"unknown scheme {scheme[:40]!r}: expected redis, rediss, redis+sentinel or rediss+sentinel"
        )
    return _sentinel(SENTINEL_SCHEMES[scheme], url.strip().partition("://")[2])


def _sentinel(tls: bool, rest: str) -> SentinelTarget:
    rest, _hash, _fragment = rest.partition("#")
    rest, _question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    if not slash or not path.strip("/"):
        raise invalid("a sentinel URL names its service after the hosts: redis+sentinel://HOST:PORT/SERVICE")
    service, _slash, db_text = path.strip("/").partition("/")
    if not db_text.isdigit() and db_text:
        raise invalid(f"the database after the service name must be a number, not {db_text[:20]!r}")
    options = _options(query)
    sentinel_tls = _boolean(options.pop("sentinel_ssl", "true" if tls else "false"))
    tls_options = tuple((name, options.pop(name)) for name in TLS_OPTIONS if name in options)
    if tls_options and not (tls or sentinel_tls):
        raise invalid("ssl_* options need TLS: use rediss+sentinel:// (or sentinel_ssl=true)")
    return SentinelTarget(
        sentinels=tuple(_address(part) for part in hosts.split(",")),
        service_name=unquote(service),
        db=int(db_text or 0),
        username=username,
        password=password,
        tls=tls,
        sentinel_tls=sentinel_tls,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        tls_options=tls_options,
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None) or None


def _address(part: str) -> tuple[str, int]:
    """host, host:port, [v6], [v6]:port."""
    text = part.strip()
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise invalid(f"sentinel address {text[:60]!r} is not [IPv6]:port")
        port_text = tail[1:]
    else:
        host, _colon, port_text = text.partition(":")
    if not host:
        raise invalid(f"a sentinel address is empty in the host list ({text[:60]!r})")
    if not port_text:
        return host, SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise invalid(f"sentinel address {text[:60]!r} has no valid port")
    return host, int(port_text)


def _options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in (*SENTINEL_OPTIONS, *TLS_OPTIONS):
            known = ", ".join((*SENTINEL_OPTIONS, *TLS_OPTIONS))
            raise invalid(f"unknown option {name[:40]!r} (known: {known})")
        if name in options:
            raise invalid(f"option {name!r} given twice")
        if name == "ssl_cert_reqs" and value.lower() not in CERT_REQS:
            raise invalid(f"ssl_cert_reqs must be one of {', '.join(CERT_REQS)}")
        options[name] = value.lower() if name == "ssl_cert_reqs" else value
    return options


def _boolean(value: str) -> bool:
    if value.lower() not in BOOLEANS:
        raise invalid("sentinel_ssl must be true or false")
    return BOOLEANS[value.lower()]
