"""The jobs, as the web side and the workers both see them: which functions a job may call, what an
event's job carries, how a job is named, and the queue every process builds. The only module that
leans on RQ's and redis-py's insides (``enqueue_commands``, ``know_server_version``); a test fails
loudly when an upgrade changes them (tests/web/test_job_template.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.errors import ForeignJob


class JobFunction(StrEnum):
    """The job functions (workers.jobs), named by path so that the web process never imports the
    workers; the only ones a job may call (CubehookJob). A test resolves each one."""

    PROCESS_EVENT = "workers.jobs.process_event"
    RECORD_EVENT = "workers.jobs.record_event"
    PROCESS_SESSION = "workers.jobs.process_session"
    RUN_ACTION = "workers.jobs.run_action"
    MAINTENANCE = "workers.jobs.maintenance"


JOB_FUNCTIONS = frozenset(JobFunction)
RUNS = "runs"  # job.meta: how many times a job that gave up ran (the dead-letter queue says so)
# What RQ 3 accepts in a job id (rq.job.JOB_ID_PATTERN): letters, digits, "_" and "-"; no ":", no ".".
_RQ_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class EventRef:
    """What an event's job carries: identifiers, never the payload. Workers fetch the rest."""

    event_id: str
    event_type: str
    resource_type: str  # a service.events.Resource value: session, check, or other (records only)
    resource_id: str
    event_time: str


def rq_id_safe(text: str, max_length: int) -> bool:
    """``text`` may stand in an RQ job id as it is: RQ accepts its characters, and it is short."""
    return len(text) <= max_length and _RQ_ID.fullmatch(text) is not None


def job_id_part(text: str, digest_chars: int) -> str:
    """``text`` as a part of a job id (a session id, an action name): as it is when RQ accepts it
    and it has at most 64 characters, else the first ``digest_chars`` hex digits of its SHA-256."""
    return text if rq_id_safe(text, 64) else hashlib.sha256(text.encode()).hexdigest()[:digest_chars]


def job_id_for(event_id: str) -> str:
    """The RQ job id for an event id: readable when the id is safe (ComplyCube's are 24 hex digits),
    a digest otherwise."""
    if rq_id_safe(event_id, 128):
        return f"evt-{event_id}"
    return "evt-sha256-" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


class CubehookJob(Job):
    """RQ's job, limited to what cubehook queues: Redis is not a code-execution boundary.

    Jobs are stored as JSON (RQ's JSONSerializer), so their data carries strings and numbers, never
    pickled objects; and a job runs only one of cubehook's job functions (JOB_FUNCTIONS), with no
    instance and no callbacks. Anyone able to write to Redis could otherwise make a worker, which
    holds the API key and the database's credentials, import and call any function.
    """

    @property
    def func(self) -> Callable[..., Any] | None:
        # Refused before the job runs, callbacks too, not only when RQ reaches for one after it.
        why = foreign(self)
        if why is not None:
            raise ForeignJob(f"job {self.id} {why}")
        func: Callable[..., Any] | None = super().func
        return func

    @property
    def success_callback(self) -> None:
        return self._no_callback("success", self._success_callback_name)

    @property
    def failure_callback(self) -> None:
        return self._no_callback("failure", self._failure_callback_name)

    @property
    def stopped_callback(self) -> None:
        return self._no_callback("stopped", self._stopped_callback_name)

    def _no_callback(self, kind: str, name: str | None) -> None:
        if name:
            raise ForeignJob(f"job {self.id} {_callback_named(kind, name)}")


def _callback_named(kind: str, name: str) -> str:
    return f"names a {kind} callback, {name!r}; cubehook sets none"


def foreign(job: Job) -> str | None:
    """Why ``job`` is not one cubehook queued, and so never runs (None: it is one): data that is
    not JSON (pickled by RQ's default serializer, say), a function that is not one of cubehook's,
    an instance, or a callback. Reads nothing but the job."""
    try:
        name, instance = job.func_name, job.instance
    except DeserializationError:
        return "cannot be read as one of cubehook's jobs (its data is not JSON: pickled by another program?)"
    if name not in JOB_FUNCTIONS or instance is not None:
        return f"names {name!r}, not one of cubehook's job functions"
    for kind, callback in (
        ("success", job._success_callback_name),
        ("failure", job._failure_callback_name),
        ("stopped", job._stopped_callback_name),
    ):
        if callback:
            return _callback_named(kind, callback)
    return None


# What every queue, worker and job fetch of cubehook's is built with.
JOB_OPTIONS: dict[str, Any] = {"serializer": JSONSerializer, "job_class": CubehookJob}


def job_retry(intervals: tuple[int, ...]) -> Retry | None:
    """RQ's retries of a job, one per interval (CUBEHOOK_JOB_RETRY_INTERVALS): every job cubehook
    queues has them, so a transient failure never dead-letters a job on its first run."""
    return Retry(max=len(intervals), interval=list(intervals)) if intervals else None


def rq_queue(name: str, connection: Redis) -> Queue:
    """The cubehook queue, as cubehook's processes and commands must all see it (JOB_OPTIONS)."""
    return Queue(name, connection=connection, **JOB_OPTIONS)


def enqueue_commands(queue: Queue, job: Job) -> list[tuple[object, ...]]:
    """The commands RQ sends to queue ``job``: RQ's own Queue.enqueue_job, into a redis-py pipeline
    that is never executed. Leans on redis-py's ``Pipeline.command_stack`` (public, undocumented)."""
    pipe = queue.connection.pipeline()
    try:
        queue.enqueue_job(job, pipeline=pipe)
        return [tuple(args) for args, _options in pipe.command_stack]
    finally:
        pipe.reset()


def know_server_version(queue: Queue, version: str | None = None) -> None:
    """RQ stamps each job with the server's version, which it reads once (INFO) and keeps on the
    queue; ``version`` (from INFO, read on the asyncio client) spares the blocking call."""
    if queue.redis_server_version is not None:
        return
    if version is None:
        queue.get_redis_server_version()
    else:
        queue.redis_server_version = tuple(int(part) for part in version.split(".")[:3])  # type: ignore[assignment]
