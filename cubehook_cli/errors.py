"""What a command that failed says: one line, what went wrong and what to do, never a traceback
(``cubehook --debug ...`` shows it). The one place where failures of the outside systems a command
met (Redis, the database, ComplyCube, a port) become words.

Modules named here (redis, sqlalchemy) are only looked at once an exception of theirs exists, so
`cubehook web` loads nothing more for it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from service.errors import CubehookError, UpstreamError, UpstreamRateLimited
from service.log import scrub_text
from service.settings import Settings, env_file_values


def one_line(exc: BaseException, settings: Settings | None) -> str:
    """What to tell the user about ``exc``, which the command did not handle itself."""
    for cause in _chain(exc):
        said = _redis(cause, settings) or _database(cause, settings) or _complycube(cause, settings)
        if said:
            return said
    if isinstance(exc, CubehookError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} (`cubehook --debug ...` shows the traceback)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _redis(exc: BaseException, settings: Settings | None) -> str | None:
    exceptions = sys.modules.get("redis.exceptions")
    if exceptions is None or not isinstance(exc, exceptions.ConnectionError | exceptions.TimeoutError):
        return None
    url = scrub_text(settings.redis_url) if settings else "CUBEHOOK_REDIS_URL"
    if isinstance(exc, exceptions.AuthenticationError):
        return f"Redis at {url} refused the user or password: check CUBEHOOK_REDIS_URL"
    if settings is not None and _embedded(settings.redis_url):
        return (
            f"Redis is not running at {url}: it was the embedded one of `cubehook dev`, which stops "
            "with it (start `make run` again; `cubehook history` reads the audit trail without it)"
        )
    return f"cannot reach Redis at {url} ({_first_line(exc)}): is it running? Set CUBEHOOK_REDIS_URL to it"


def _embedded(url: str) -> bool:
    """Whether ``url`` is the embedded Redis of a `cubehook dev` run, as its env file says."""
    recorded = env_file_values()
    return recorded.get("DEV_REDIS_EMBEDDED") == "true" and recorded.get("CUBEHOOK_REDIS_URL") == url


def _database(exc: BaseException, settings: Settings | None) -> str | None:
    exceptions = sys.modules.get("sqlalchemy.exc")
    if exceptions is None or not isinstance(exc, exceptions.OperationalError | exceptions.ProgrammingError):
        return None
    url = scrub_text(settings.database_url) if settings else "CUBEHOOK_DATABASE_URL"
    problem = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
    if "no such table" in problem or "does not exist" in problem:
        return f"no audit trail at {url}; run `cubehook db upgrade` or set CUBEHOOK_DATABASE_URL"
    return f"cannot use the database at {url} ({problem}): set CUBEHOOK_DATABASE_URL to a reachable one"


def _complycube(exc: BaseException, settings: Settings | None) -> str | None:
    if not isinstance(exc, UpstreamError):
        return None
    url = settings.complycube_base_url if settings else "CUBEHOOK_COMPLYCUBE_BASE_URL"
    if exc.status in (401, 403):
        return (
            f"ComplyCube at {url} refused the API key ({exc.status}): check CUBEHOOK_COMPLYCUBE_API_KEY "
            "(test_... for the sandbox, live_... for live)"
        )
    if exc.status == 404:
        return (
            f"ComplyCube at {url} has no such resource ({exc}): check the id, and that the API key "
            "is of its account"
        )
    if exc.status is None:
        return f"cannot reach ComplyCube at {url} ({exc}): check CUBEHOOK_COMPLYCUBE_BASE_URL and the network"
    if isinstance(exc, UpstreamRateLimited) or exc.status == 429 or exc.status >= 500:
        return f"ComplyCube at {url} is unavailable for now ({exc}): try again in a minute"
    return f"ComplyCube at {url} refused the request ({exc})"


def _first_line(exc: BaseException) -> str:
    text = scrub_text(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
