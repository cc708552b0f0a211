"""The intake's scripts, loaded into Redis by the workers: the web process's Redis user may only run
scripts by their SHA-1, never load one (service.evalsha, deploy/redis/users.acl).

The watch (workers.watch) calls ``ensure`` as the worker starts and on every tick: a Redis that
restarted empty, or a replica promoted by Sentinel, holds no scripts until then, and the intake
answers 503 meanwhile (ComplyCube retries). The event script is made from RQ's own commands
(service.job_template) with the settings sent per event, so the workers' copy is the web's whatever
either's settings; it takes two shapes, a job with retries and one without, and both are loaded.
"""

from __future__ import annotations

from redis import Redis

from service import scripts
from service.evalsha import sha1
from service.log import get_logger
from service.queue import EventQueue
from service.redis import redis_client
from service.settings import Settings

log = get_logger("cubehook.scripts")
INTAKE_SCRIPTS = (
    scripts.CLAIM_SEEN,
    scripts.SEE_IGNORED,
    scripts.QUARANTINE_KEEP,
    scripts.QUARANTINE_FORGET,
    scripts.QUARANTINE_TOTALS,
    scripts.COUNT_IGNORED,
)


class IntakeScripts:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._texts: dict[str, str] | None = None

    def texts(self) -> dict[str, str]:
        """Every script the intake runs, by SHA-1. Raises RedisError (the first time)."""
        if self._texts is None:
            found = list(INTAKE_SCRIPTS)
            for intervals in ((0,), ()):  # a job with retries, and one without
                settings = self.settings.model_copy(update={"job_retry_intervals": intervals})
                accept = EventQueue(self.redis, settings).accept_script()
                if accept is not None:
                    found.append(accept)
            self._texts = {sha1(text): text for text in found}
        return self._texts

    def ensure(self) -> int:
        """Load the scripts Redis does not hold; how many were loaded. Raises RedisError."""
        texts = self.texts()
        shas = list(texts)
        missing = [sha for sha, held in zip(shas, self.redis.script_exists(*shas), strict=True) if not held]
        for sha in missing:
            self.redis.script_load(texts[sha])
        if missing:
            log.info("scripts.loaded", count=len(missing), reason="the intake runs them by SHA only")
        return len(missing)


def load_at(url: str) -> int:
    """What a worker's first tick does, for a process that is no worker (``cubehook dev`` before its
    web starts, tests and benchmarks of the web alone): the intake's scripts into the Redis at
    ``url``. How many were loaded; raises RedisError."""
    redis = redis_client(Settings(redis_url=url))
    try:
        return IntakeScripts(redis, Settings(redis_url=url)).ensure()
    finally:
        redis.close()
